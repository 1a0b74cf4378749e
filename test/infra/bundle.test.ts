import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../infra/build.ts';
import { type LocalStack, startLocalStack } from '../../local/local-stack.ts';
import { notificationFor } from '../../shared/aws/s3-events.ts';
import { loadConfig } from '../../shared/config/config.ts';
import { resetDatabase, SAMPLE_TABLES } from '../support/pipeline.ts';
import { LOCAL_CONTEXT, SYNTH_TIMEOUT_MS } from './helpers.ts';

const run = promisify(execFile);
const nodeBin = path.resolve('node_modules/.bin/node');

interface LambdaResource {
  Type: string;
  Properties: { Code?: { S3Key?: string }; Environment?: { Variables?: Record<string, string> } };
}

/** Synthesizes the stack (which runs esbuild exactly as `cdk deploy` would) and maps service name → bundle file. */
async function bundles(outdir: string): Promise<Record<string, string>> {
  const cdkJson = JSON.parse(readFileSync('cdk.json', 'utf8')) as { context: Record<string, unknown> };
  const { app, stack } = await buildApp({
    nag: false,
    outdir,
    context: { ...cdkJson.context, ...LOCAL_CONTEXT },
  });
  const assembly = app.synth();
  const template = assembly.getStackByName(stack.stackName).template as {
    Resources: Record<string, LambdaResource>;
  };
  const out: Record<string, string> = {};
  for (const r of Object.values(template.Resources)) {
    const service = r.Properties.Environment?.Variables?.POWERTOOLS_SERVICE_NAME;
    const key = r.Properties.Code?.S3Key;
    if (r.Type === 'AWS::Lambda::Function' && service && key) {
      out[service] = path.join(outdir, `asset.${key.replace(/\.zip$/, '')}`, 'index.mjs');
    }
  }
  return out;
}

/** Imports a bundle in a fresh Node process (as the Lambda runtime would) and invokes its handler once. */
async function invoke(bundle: string, event: unknown, env: Record<string, string>): Promise<unknown> {
  const script = `const { handler } = await import(${JSON.stringify(bundle)});
    const context = { awsRequestId: 'bundle-test', functionName: 'bundle-test', getRemainingTimeInMillis: () => 30000 };
    const result = await handler(JSON.parse(process.env.EVENT), context);
    process.stdout.write('RESULT ' + JSON.stringify(result ?? null) + '\\n');
    process.exit(0); // the pool keeps idle connections open, as a warm Lambda container would`;
  const { stdout } = await run(nodeBin, ['--input-type=module', '-e', script], {
    env: {
      PATH: process.env.PATH ?? '',
      ...env,
      EVENT: JSON.stringify(event),
      POWERTOOLS_METRICS_DISABLED: 'true',
    },
  });
  const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
  return JSON.parse(line?.slice(7) ?? 'null');
}

function sqsEvent(body: string, arn: string) {
  return {
    Records: [
      {
        messageId: 'm-1',
        receiptHandle: 'r-1',
        body,
        attributes: {
          ApproximateReceiveCount: '1',
          SentTimestamp: String(Date.now()),
          SenderId: 'test',
          ApproximateFirstReceiveTimestamp: String(Date.now()),
        },
        messageAttributes: {},
        md5OfBody: '',
        eventSource: 'aws:sqs',
        eventSourceARN: arn,
        awsRegion: 'us-east-1',
      },
    ],
  };
}

describe('the bundled handlers start and work', () => {
  const outdir = mkdtempSync(path.join(tmpdir(), 'dropload-bundle-'));
  let files: Record<string, string>;
  let stack: LocalStack;
  let env: Record<string, string>;

  beforeAll(async () => {
    files = await bundles(outdir);
    await resetDatabase(SAMPLE_TABLES);
    stack = await startLocalStack({
      config: await loadConfig(),
      env: { ...process.env, AWS_ENDPOINT_URL: undefined },
    });
    env = {
      DATABASE_URL: stack.databaseUrl,
      AWS_ENDPOINT_URL: stack.endpoint,
      AWS_REGION: 'us-east-1',
      DROPLOAD_CHUNK_QUEUE_URL: stack.chunks.url,
      DROPLOAD_INGEST_QUEUE_URL: stack.ingest.url,
      DROPLOAD_DB_SSL: 'off',
    };
  }, SYNTH_TIMEOUT_MS);

  afterAll(async () => {
    await stack?.stop();
    rmSync(outdir, { recursive: true, force: true });
  });

  it('bundles split, load, migrate and sweep', () => {
    expect(Object.keys(files).sort()).toEqual([
      'dropload-load',
      'dropload-migrate',
      'dropload-split',
      'dropload-sweep',
    ]);
  });

  it('migrate applies nothing twice', async () => {
    expect(await invoke(files['dropload-migrate'] as string, {}, env)).toEqual({ applied: [] });
  });

  it('migrate creates the loader role it is given, with the grants of the bundled config', async () => {
    const role = `bundle_loader_${process.pid}`;
    const loaderUrl = new URL(stack.databaseUrl);
    loaderUrl.username = role;
    loaderUrl.password = 'bundle-test-password';
    try {
      await invoke(
        files['dropload-migrate'] as string,
        {},
        { ...env, DROPLOAD_LOADER_DATABASE_URL: loaderUrl.toString() },
      );
      const { rows } = await sql<Record<string, boolean>>`select
          has_table_privilege(${role}, 'orders', 'INSERT, UPDATE, SELECT') as orders_write,
          has_table_privilege(${role}, 'orders', 'DELETE') as orders_delete,
          has_table_privilege(${role}, 'dropload.file', 'INSERT') as ledger_write`.execute(stack.db);
      expect(rows[0]).toEqual({ orders_write: true, orders_delete: false, ledger_write: true });
    } finally {
      await sql`drop owned by ${sql.id(role)}`.execute(stack.db).catch(() => {});
      await sql`drop role if exists ${sql.id(role)}`.execute(stack.db);
    }
  });

  it('split turns a real S3 notification into chunk messages, and load commits them', async () => {
    const key = 'incoming/orders/bundle test+1.csv';
    const body =
      'order_id,customer_id,ordered_at,amount,currency,status\n9001,1,2026-11-27T10:00:00Z,10.50,EUR,paid\n';
    const put = await stack.s3.send(new PutObjectCommand({ Bucket: stack.bucket, Key: key, Body: body }));
    const notification = notificationFor({ bucket: stack.bucket, key, etag: put.ETag, size: body.length });

    const split = await invoke(
      files['dropload-split'] as string,
      sqsEvent(notification, stack.ingest.arn),
      env,
    );
    expect(split).toEqual({ batchItemFailures: [] });

    const received = await stack.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: stack.chunks.url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
    );
    expect(received.Messages).toHaveLength(1);
    const chunk = received.Messages?.[0]?.Body as string;
    expect(JSON.parse(chunk)).toMatchObject({ key, index: 0, count: 1, firstLine: 2 });

    const load = await invoke(files['dropload-load'] as string, sqsEvent(chunk, stack.chunks.arn), env);
    expect(load).toEqual({ batchItemFailures: [] });
    const rows = await sql<{ order_id: number; amount: string }>`
      select order_id::int as order_id, amount::text as amount from orders where order_id = 9001`.execute(
      stack.db,
    );
    expect(rows.rows).toEqual([{ order_id: 9001, amount: '10.50' }]);
  });

  it('the sweep re-drives a file whose rows wait with no retry pending: one orphan message with its new token', async () => {
    const { rows } = await sql<{ id: number }>`insert into dropload.file
        (bucket, key, version_id, etag, size, dataset, state, chunk_count, chunks_done, updated_at)
      values (${stack.bucket}, 'incoming/shop/orders/bundle-sweep.csv', '', 'sweep-etag', 1, 'shop-orders',
        'waiting', 1, 1, now()) returning id::int as id`.execute(stack.db);
    const fileId = rows[0]?.id as number;
    await sql`insert into dropload.orphan (file_id, chunk_idx, line, target, row, missing, parent_table, parent_key, raw, expires_at)
      values (${fileId}, 0, 2, 'shop.orders', '{}', 'shop.customers row with email = a@b', 'shop.customers', 'email',
        'raw', now() + interval '1 hour')`.execute(stack.db);

    const event = { source: 'aws.events', 'detail-type': 'Scheduled Event', detail: {} };
    expect(await invoke(files['dropload-sweep'] as string, event, env)).toEqual({ redriven: 1 });
    const received = await stack.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: stack.chunks.url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
    );
    expect(received.Messages?.map((m) => JSON.parse(m.Body ?? ''))).toEqual([
      { kind: 'orphans', fileId, attempt: 1, token: 1 },
    ]);
    // Its retry is pending now: a second sweep sends nothing.
    expect(await invoke(files['dropload-sweep'] as string, event, env)).toEqual({ redriven: 0 });
  });
});
