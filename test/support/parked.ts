import { PutObjectCommand } from '@aws-sdk/client-s3';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { ChunkMessage } from '../../shared/aws/messages.ts';
import { loadChunk } from '../../shared/load/load-service.ts';
import type { PipelineDeps } from '../../shared/pipeline/services.ts';
import { splitObject } from '../../shared/split/split-service.ts';
import type { TestPipeline } from './pipeline.ts';

/**
 * Splits and loads a file by hand through `parked`: deps whose chunk queue no worker reads, so the
 * retry messages of its waiting rows are never taken and a test runs each retry itself. Returns the
 * file's id.
 */
export async function loadParked(p: TestPipeline, parked: PipelineDeps, key: string, body: string) {
  const put = await p.stack.s3.send(new PutObjectCommand({ Bucket: p.stack.bucket, Key: key, Body: body }));
  const outcome = await splitObject(parked, {
    bucket: p.stack.bucket,
    key,
    etag: put.ETag?.replace(/"/g, ''),
  });
  for (let n = 0; n < outcome.chunks; ) {
    const res = await p.stack.sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: parked.chunkQueueUrl,
        MaxNumberOfMessages: 10,
        WaitTimeSeconds: 1,
      }),
    );
    for (const m of res.Messages ?? []) {
      const body = JSON.parse(m.Body ?? '{}');
      if (body.kind === 'orphans') continue;
      await loadChunk(parked, ChunkMessage.parse(body));
      n++;
    }
  }
  return outcome.fileId;
}
