import { describe, expect, it } from 'vitest';
import {
  decodeS3Key,
  encodeS3Key,
  notificationFor,
  objectRefsFromBody,
  unquoteEtag,
} from '../../shared/aws/s3-events.ts';

/** An S3 event notification record shaped as AWS documents it (event structure, version 2.1). */
function awsRecord(eventName: string, object: Record<string, unknown>, bucket = 'amzn-s3-demo-bucket') {
  return {
    eventVersion: '2.1',
    eventSource: 'aws:s3',
    awsRegion: 'us-west-2',
    eventTime: '2024-05-01T12:34:56.789Z',
    eventName,
    userIdentity: { principalId: 'AWS:AIDAJDPLRKLG7UEXAMPLE' },
    requestParameters: { sourceIPAddress: '172.16.0.1' },
    responseElements: {
      'x-amz-request-id': 'C3D13FE58DE4C810',
      'x-amz-id-2': 'FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD',
    },
    s3: {
      s3SchemaVersion: '1.0',
      configurationId: 'dropload-incoming',
      bucket: {
        name: bucket,
        ownerIdentity: { principalId: 'A3NL1KOZZKExample' },
        arn: `arn:aws:s3:::${bucket}`,
      },
      object,
    },
  };
}

const PUT = awsRecord('ObjectCreated:Put', {
  key: 'incoming/orders/M%C3%BCnchen+2024%2B%25+report.csv',
  size: 1024,
  eTag: 'd41d8cd98f00b204e9800998ecf8427e',
  versionId: '096fKKXTRTtl3on89fVO.nfljtsv6qko',
  sequencer: '0055AED6DCD90281E5',
});

describe('decodeS3Key', () => {
  it('reads + as a space', () => {
    expect(decodeS3Key('incoming/orders/my+file.csv')).toBe('incoming/orders/my file.csv');
  });

  it('reads %2B as a plus sign', () => {
    expect(decodeS3Key('a%2Bb.csv')).toBe('a+b.csv');
  });

  it('decodes percent-encoded UTF-8', () => {
    expect(decodeS3Key('M%C3%BCnchen.csv')).toBe('München.csv');
    expect(decodeS3Key('%F0%9F%98%80.csv')).toBe('😀.csv');
  });

  it('decodes %25 as a percent sign, once', () => {
    expect(decodeS3Key('100%25.csv')).toBe('100%.csv');
    expect(decodeS3Key('%252B.csv')).toBe('%2B.csv');
  });

  it('leaves plain keys and slashes alone', () => {
    expect(decodeS3Key('incoming/orders/2024-01-01.csv')).toBe('incoming/orders/2024-01-01.csv');
    expect(decodeS3Key('a%2Fb')).toBe('a/b');
  });
});

describe('encodeS3Key', () => {
  it('encodes as S3 does: spaces as +, slashes kept, the rest percent-encoded', () => {
    expect(encodeS3Key('incoming/orders/my file+1%.csv')).toBe('incoming/orders/my+file%2B1%25.csv');
    expect(encodeS3Key('München/ü.csv')).toBe('M%C3%BCnchen/%C3%BC.csv');
  });

  it('round-trips through decodeS3Key', () => {
    const keys = [
      'incoming/orders/plain.csv',
      'incoming/orders/with space.csv',
      'incoming/orders/a+b.csv',
      'incoming/orders/ + + .csv',
      'incoming/orders/100%.csv',
      'incoming/orders/%2B%20literal.csv',
      'incoming/orders/München ü 中文 😀.csv',
      "incoming/orders/odd !'()*~&=?#[]@$;:,.csv",
      'incoming//double//slash/',
    ];
    for (const key of keys) expect(decodeS3Key(encodeS3Key(key)), key).toBe(key);
  });
});

describe('unquoteEtag', () => {
  it('strips the quotes S3 puts around ETags, and only those', () => {
    expect(unquoteEtag('"abc"')).toBe('abc');
    expect(unquoteEtag('abc')).toBe('abc');
    expect(unquoteEtag('"abc-3"')).toBe('abc-3');
  });
});

describe('objectRefsFromBody', () => {
  it('reads an S3 ObjectCreated:Put notification, decoding the key', () => {
    const body = JSON.stringify({ Records: [PUT] });
    expect(objectRefsFromBody(body)).toEqual([
      {
        bucket: 'amzn-s3-demo-bucket',
        key: 'incoming/orders/München 2024+% report.csv',
        etag: 'd41d8cd98f00b204e9800998ecf8427e',
        versionId: '096fKKXTRTtl3on89fVO.nfljtsv6qko',
        size: 1024,
        sequencer: '0055AED6DCD90281E5',
      },
    ]);
  });

  it('unquotes a quoted eTag and leaves out an empty versionId', () => {
    const rec = awsRecord('ObjectCreated:CompleteMultipartUpload', {
      key: 'k.csv',
      size: 5,
      eTag: '"abc-2"',
      versionId: '',
      sequencer: '01',
    });
    expect(objectRefsFromBody(JSON.stringify({ Records: [rec] }))).toEqual([
      {
        bucket: 'amzn-s3-demo-bucket',
        key: 'k.csv',
        etag: 'abc-2',
        versionId: undefined,
        size: 5,
        sequencer: '01',
      },
    ]);
  });

  it('accepts a minimal hand-made record (no eTag, request ids or region)', () => {
    const body = JSON.stringify({
      Records: [
        { eventName: 'ObjectCreated:Copy', s3: { bucket: { name: 'b' }, object: { key: 'x+y.csv' } } },
      ],
    });
    expect(objectRefsFromBody(body)).toEqual([
      { bucket: 'b', key: 'x y.csv', etag: undefined, versionId: undefined, size: undefined },
    ]);
  });

  it('returns no refs for the s3:TestEvent S3 sends when notifications are set up', () => {
    const body = JSON.stringify({
      Service: 'Amazon S3',
      Event: 's3:TestEvent',
      Time: '2024-05-01T12:00:00.000Z',
      Bucket: 'amzn-s3-demo-bucket',
      RequestId: '5582815E1AEA5ADF',
      HostId: '8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE',
    });
    expect(objectRefsFromBody(body)).toEqual([]);
  });

  it('ignores ObjectRemoved events and keeps the created ones, in order', () => {
    const removed = awsRecord('ObjectRemoved:Delete', {
      key: 'incoming/orders/gone.csv',
      sequencer: '0055AED6DCD90281E6',
    });
    const marker = awsRecord('ObjectRemoved:DeleteMarkerCreated', {
      key: 'incoming/orders/gone2.csv',
      versionId: 'v9',
      sequencer: '0055AED6DCD90281E7',
    });
    const second = awsRecord('ObjectCreated:Post', {
      key: 'second.csv',
      size: 1,
      eTag: 'e2',
      sequencer: '02',
    });
    const refs = objectRefsFromBody(JSON.stringify({ Records: [removed, PUT, marker, second] }));
    expect(refs.map((r) => r.key)).toEqual(['incoming/orders/München 2024+% report.csv', 'second.csv']);
    expect(objectRefsFromBody(JSON.stringify({ Records: [removed, marker] }))).toEqual([]);
  });

  it('throws on a body that is not JSON or not an S3 notification', () => {
    expect(() => objectRefsFromBody('not json')).toThrow(SyntaxError);
    expect(() => objectRefsFromBody(JSON.stringify({ Event: 's3:OtherEvent' }))).toThrow();
    expect(() =>
      objectRefsFromBody(JSON.stringify({ Records: [{ eventName: 'ObjectCreated:Put' }] })),
    ).toThrow();
  });
});

describe('notificationFor', () => {
  it('builds a notification that objectRefsFromBody reads back to the same ref', () => {
    const ref = {
      bucket: 'b',
      key: 'incoming/orders/a b+c%d ü.csv',
      etag: 'abc',
      versionId: 'v1',
      size: 12,
      sequencer: '0055AED6DCD90281E5',
    };
    const body = notificationFor(ref, 'eu-west-1');
    expect(objectRefsFromBody(body)).toEqual([ref]);
    const parsed = JSON.parse(body) as {
      Records: {
        eventVersion: string;
        eventName: string;
        awsRegion: string;
        s3: { object: { key: string } };
      }[];
    };
    expect(parsed.Records).toHaveLength(1);
    expect(parsed.Records[0]).toMatchObject({
      eventVersion: '2.1',
      eventName: 'ObjectCreated:Put',
      awsRegion: 'eu-west-1',
      s3: { object: { key: 'incoming/orders/a+b%2Bc%25d+%C3%BC.csv' } },
    });
  });

  it('builds removal events that objectRefsFromBody ignores, and omits absent etag and version', () => {
    expect(
      objectRefsFromBody(notificationFor({ bucket: 'b', key: 'k' }, 'us-east-1', 'ObjectRemoved:Delete')),
    ).toEqual([]);
    expect(objectRefsFromBody(notificationFor({ bucket: 'b', key: 'k' }))).toEqual([
      {
        bucket: 'b',
        key: 'k',
        etag: undefined,
        versionId: undefined,
        size: 0,
        sequencer: expect.any(String),
      },
    ]);
  });

  it("gives a made-up event a sequencer in S3's form that grows with each event, as S3's do for a key", () => {
    const sequencers = Array.from(
      { length: 50 },
      () => objectRefsFromBody(notificationFor({ bucket: 'b', key: 'k' }))[0]?.sequencer ?? '',
    );
    for (const s of sequencers) expect(s).toMatch(/^[0-9A-F]{16}$/);
    expect(new Set(sequencers).size).toBe(50);
    expect([...sequencers].sort()).toEqual(sequencers);
  });
});
