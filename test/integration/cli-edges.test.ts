import { execFile } from 'node:child_process';
import path from 'node:path';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FileReport } from '../../cli/report.ts';
import { insertRejects } from '../../shared/ledger/ledger.ts';
import type { Database } from '../../shared/ledger/schema.ts';
import { newestFileByKey } from '../../shared/ops/rejects.ts';
import { startTestPipeline, type TestPipeline } from '../support/pipeline.ts';
import waitingConfig, { NW_TABLES } from '../support/waiting.config.ts';

/**
 * The CLI at its edges (issue 15): errors as one line with the fix and an exit code by class, a reader
 * that closes the pipe, long texts capped in the ledger and the table, `rejects` on a failed file, and
 * `wait`'s exit codes. Each command runs in a child process against the test pipeline's database.
 */

const NODE = path.resolve('node_modules/.bin/node');

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

let p: TestPipeline;
let db: Kysely<Database>;

beforeAll(async () => {
  p = await startTestPipeline(waitingConfig, NW_TABLES);
  db = p.deps.db;
});
afterAll(async () => {
  await p?.stop();
});

function cli(args: string[], env: Record<string, string | undefined> = {}): Promise<Ran> {
  const merged: NodeJS.ProcessEnv = {};
  const all = { ...process.env, AWS_ENDPOINT_URL: undefined, DATABASE_URL: p.stack.databaseUrl, ...env };
  for (const [k, v] of Object.entries(all)) if (v !== undefined) merged[k] = v;
  return new Promise((resolve) => {
    execFile(
      NODE,
      ['cli/dropload.ts', ...args],
      { env: merged, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr }),
    );
  });
}

describe('long texts are capped', () => {
  const longKey = `incoming/regions/${'k'.repeat(1003)}.csv`;
  const extra = Array.from({ length: 3000 }, (_, i) => `extra_${i}`);

  it('a note over 2,000 characters is stored capped, and a 1,024-character key widens no other row', async () => {
    expect(longKey).toHaveLength(1024);
    await p.load('incoming/regions/short.csv', 'region_id,name\n1,Eastern\n');
    await p.load(longKey, `region_id,name,${extra.join(',')}\n1,Eastern${',v'.repeat(3000)}\n`);
    const full = `columns not in the schema were ignored: ${extra.map((c) => `"${c}"`).join(', ')}`;
    const capped = `${full.slice(0, 2000)}… (${full.length - 2000} more characters)`;
    const file = await newestFileByKey(db, longKey);
    expect(file.note).toBe(capped);

    const status = await cli(['status']);
    expect([status.code, status.stderr]).toEqual([0, '']);
    const lines = status.stdout.split('\n');
    const shown = `${longKey.slice(0, 40)}…${longKey.slice(-39)}`;
    expect(lines[0]).toBe(
      `${'file'.padEnd(80)}  dataset  state   chunks  read  loaded  rejected  open  seconds`,
    );
    expect(lines[1]?.startsWith(`${shown}  regions  loaded  1/1     1     1       0         0     `)).toBe(
      true,
    );
    expect(lines[2]?.startsWith(`${'incoming/regions/short.csv'.padEnd(80)}  regions  loaded  1/1`)).toBe(
      true,
    );
    expect(lines).toContain(`${longKey}: note: ${capped}`);

    const json = await cli(['status', '--json']);
    const files = (JSON.parse(json.stdout) as { files: FileReport[] }).files;
    expect(files[0]?.key).toBe(longKey);
  });

  it('a reject reason over 2,000 characters is stored capped', async () => {
    const file = await newestFileByKey(db, longKey);
    const reason = 'r'.repeat(2500);
    await db
      .transaction()
      .execute((trx) =>
        insertRejects(trx, file.id, 0, [{ line: 99, column: null, kind: 'invalid', reason, raw: 'raw' }]),
      );
    const stored = await db
      .selectFrom('dropload.reject')
      .select('reason')
      .where('file_id', '=', file.id)
      .where('line', '=', 99)
      .executeTakeFirstOrThrow();
    expect(stored.reason).toBe(`${'r'.repeat(2000)}… (500 more characters)`);
  });
});
