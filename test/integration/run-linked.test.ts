import { appendFile, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Kysely } from 'kysely';
import type { Migration } from 'kysely/migration';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { runFiles, type Upload } from '../../cli/run.ts';
import type { SqsHandler } from '../../local/event-source.ts';
import { uploadFile } from '../../local/local-pipeline.ts';
import { defineDataset } from '../../shared/config/dataset.ts';
import { startTestPipeline, type TestPipeline } from '../support/pipeline.ts';

/**
 * `run` links each local file into its embedded emulator instead of uploading a copy (issue 14): the
 * split and the loads read it where it lies, through the same S3 calls. Rows, versions and failures
 * must come out as they did with the upload.
 */
const TABLE = 'it_run_linked';

const table: Migration = {
  async up(db: Kysely<unknown>) {
    await db.schema
      .createTable(TABLE)
      .addColumn('id', 'bigint', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .execute();
  },
};

const config = {
  datasets: [
    defineDataset({
      name: 'people',
      prefix: 'incoming/people/',
      format: 'csv',
      table: TABLE,
      schema: z.object({ id: z.coerce.number().int().positive(), name: z.string().min(1) }),
      // Several chunks, so the loads read the file by ranges.
      chunkBytes: 64 * 1024,
    }),
  ],
  migrations: { '20260101000000_run_linked': table },
};

const ROWS = 20_000;
const csv = (from = 1) =>
  `id,name\n${Array.from({ length: ROWS }, (_, i) => `${from + i},${i % 1000 === 0 ? '' : `name ${i}`}`).join('\n')}\n`;

let pipeline: TestPipeline | undefined;
afterEach(async () => {
  await pipeline?.stop();
  pipeline = undefined;
});

async function localFile(name: string, content: string | Uint8Array): Promise<Upload> {
  const file = path.join(await mkdtemp(path.join(tmpdir(), 'dropload-run-linked-')), name);
  await writeFile(file, content);
  return {
    path: file,
    key: `incoming/people/${name}`,
    dataset: pipeline?.config.datasets[0] as Upload['dataset'],
  };
}

const summary = (r: { state: string; rows: { read: number; loaded: number; rejected: number } }) => [
  r.state,
  r.rows.read,
  r.rows.loaded,
  r.rows.rejected,
];

describe('run reads a local file where it lies', () => {
  it('loads a CSV and its gzip exactly, as the version its upload would be', async () => {
    pipeline = await startTestPipeline(config, [TABLE]);
    expect(pipeline.stack.link).toBeDefined();
    const plain = await localFile('people.csv', csv());
    const gzipped = await localFile('more.csv.gz', gzipSync(csv(ROWS + 1)));
    const { reports } = await runFiles(pipeline, [plain, gzipped], { timeoutMs: 60_000, rejectsShown: 0 });
    expect(reports.map(summary)).toEqual([
      ['loaded', ROWS, ROWS - 20, 20],
      ['loaded', ROWS, ROWS - 20, 20],
    ]);
    // The same bytes uploaded are the same version: the ledger's identity of a file does not depend on how it came.
    const uploaded = await uploadFile(
      pipeline.stack.s3,
      pipeline.stack.bucket,
      'elsewhere/people.csv',
      plain.path,
    );
    const [file] = await pipeline.deps.db
      .selectFrom('dropload.file')
      .select('etag')
      .where('key', '=', plain.key)
      .execute();
    expect(file?.etag).toBe(uploaded.etag);
  });

  it.each([
    ['before the split reads it', 'split'],
    ['while its chunks load', 'load'],
  ] as const)('a file changed in place %s fails, and the report says so', async (_when, stage) => {
    let file = '';
    let changed = false;
    const changeFirst =
      (handler: SqsHandler): SqsHandler =>
      async (event, context) => {
        if (!changed) {
          changed = true;
          await appendFile(file, `${ROWS + 1},late\n`);
        }
        return handler(event, context);
      };
    pipeline = await startTestPipeline(config, [TABLE], {
      wrap: (fn, handler) => (fn === stage ? changeFirst(handler) : handler),
    });
    const upload = await localFile('changing.csv', csv());
    file = upload.path;
    const { reports } = await runFiles(pipeline, [upload], { timeoutMs: 60_000, rejectsShown: 0 });
    const [report] = reports;
    expect(report?.state).toBe('failed');
    expect(report?.error).toMatch(
      stage === 'split' ? /changed while it was being loaded/ : /was overwritten before all of it was read/,
    );
    expect(report?.note).toBe(
      `${file} changed on disk during this run: run it again to load it as it is now`,
    );
  });
});
