import path from 'node:path';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { rejectsOfKey, startTestPipeline } from '../support/pipeline.ts';
import threadsConfig, { THREAD_ROWS_TABLE } from '../support/threads.config.ts';

/**
 * Loads on worker threads (local/load-threads.ts) give the ledger, the rejects and the table the loads
 * on the main thread give. Threads need connections of their own: only against Postgres (DATABASE_URL),
 * as the embedded database has one connection.
 */

const CONFIG_FILE = path.resolve('test/support/threads.config.ts');
const KEY = 'incoming/rows/threads.csv';

/** 12,000 rows over several 64 KiB chunks: line 101 fails the schema, line 10,002 repeats key 7. */
function file(): string {
  const lines = ['id,label'];
  for (let id = 1; id <= 12000; id++) {
    if (id === 100) lines.push('-100,negative');
    else if (id === 10001) lines.push('7,again');
    else lines.push(`${id},row ${id} ${'x'.repeat(30)}`);
  }
  return `${lines.join('\n')}\n`;
}

/** One run of the file, two load threads asked for: with the config's module (so on them) or without (the main thread). */
async function runOnce(configFile?: string) {
  const p = await startTestPipeline(threadsConfig, [THREAD_ROWS_TABLE], {
    workers: 2,
    configFile,
    env: { DROPLOAD_LOAD_THREADS: '2' },
  });
  try {
    const { reports } = await p.load(KEY, file());
    const table = await sql<{ n: number; ids: number; labels: string }>`
      select count(*)::int as n, sum(id)::int as ids, md5(string_agg(label, ',' order by id)) as labels
      from ${sql.table(THREAD_ROWS_TABLE)}`.execute(p.deps.db);
    if (!reports[0]) throw new Error('no report');
    const { seconds: _seconds, ...report } = reports[0];
    return {
      threads: p.loadThreads,
      report,
      rejects: await rejectsOfKey(p.deps.db, KEY),
      table: table.rows[0],
    };
  } finally {
    await p.stop();
  }
}

describe.runIf(process.env.DATABASE_URL)('loads on worker threads', () => {
  it('end with the ledger, rejects and rows the main thread gives', async () => {
    const threaded = await runOnce(CONFIG_FILE);
    const inProcess = await runOnce();
    expect(threaded.threads).toBe(2);
    expect(inProcess.threads).toBe(0);
    expect(threaded.report).toMatchObject({
      state: 'loaded',
      rows: { read: 12000, loaded: 11998, inserted: 11998, rejected: 2 },
    });
    expect(threaded.report.chunks.total).toBeGreaterThan(4);
    expect(threaded.rejects.map((r) => r.line)).toEqual([101, 10002]);
    expect(threaded.table).toEqual({
      n: 11998,
      ids: (12000 * 12001) / 2 - 100 - 10001,
      labels: expect.any(String),
    });
    expect(threaded.report).toEqual(inProcess.report);
    expect(threaded.rejects).toEqual(inProcess.rejects);
    expect(threaded.table).toEqual(inProcess.table);
  });
});
