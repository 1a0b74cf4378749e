import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Kysely, sql } from 'kysely';
import { runFiles, type Upload } from '../../cli/run.ts';
import { type LocalPipeline, type PipelineOptions, startPipeline } from '../../local/local-pipeline.ts';
import { SHOP_TABLES } from '../../samples/shop.ts';
import { type DroploadConfig, type ResolvedConfig, resolveConfig } from '../../shared/config/config.ts';
import { createDb, createPool } from '../../shared/ledger/connection.ts';
import { rejectsOf } from '../../shared/ledger/ledger.ts';
import type { Database } from '../../shared/ledger/schema.ts';
import { expectHonestCounts } from './counts.ts';

/** The tables of the bundled sample datasets (dropload.config.ts), children first. */
export const SAMPLE_TABLES = ['customers', 'orders', 'events', ...SHOP_TABLES];

/**
 * Drops everything a previous test left in the shared database: the ledger schema and the given
 * tables. With DATABASE_URL unset each pipeline gets a fresh embedded PGlite, so there is nothing to drop.
 */
export async function resetDatabase(tables: string[], url = process.env.DATABASE_URL): Promise<void> {
  if (!url || tables.length === 0) return;
  const db = createDb(createPool({ connectionString: url, poolMax: 1 }));
  try {
    await sql`drop schema if exists dropload cascade`.execute(db);
    for (const t of tables) await sql`drop table if exists ${sql.table(t)} cascade`.execute(db);
  } finally {
    await db.destroy();
  }
}

export interface TestPipeline extends LocalPipeline {
  config: ResolvedConfig;
  /** Writes `content` to a temp file and runs it through the pipeline under `key`; returns the file's report. */
  load(key: string, content: string | Uint8Array): ReturnType<typeof runFiles>;
}

/** A whole local pipeline (embedded emulator, the test database, real handlers) on a fresh schema. */
export async function startTestPipeline(
  config: DroploadConfig,
  tables: string[],
  options: Partial<PipelineOptions> = {},
): Promise<TestPipeline> {
  const env: Record<string, string | undefined> = {
    ...process.env,
    AWS_ENDPOINT_URL: undefined,
    ...options.env,
  };
  await resetDatabase(tables, env.DATABASE_URL);
  const resolved = resolveConfig(config, 'test config');
  // Tests assert outcomes; the fault suite's expected failures would only bury the runner's output.
  const pipeline = await startPipeline({ workers: 2, logLevel: 'SILENT', ...options, config: resolved, env });
  const dir = await mkdtemp(path.join(tmpdir(), 'dropload-test-'));
  let n = 0;
  const load = async (key: string, content: string | Uint8Array) => {
    const file = path.join(dir, `f${n++}`);
    await writeFile(file, content);
    const dataset = resolved.datasets.find((d) => key.startsWith(d.prefix)) ?? resolved.datasets[0];
    const upload = { path: file, key, dataset } as Upload;
    const run = await runFiles(pipeline, [upload], { timeoutMs: 30_000, rejectsShown: 1000 });
    // Every load of every test checks that no counter was derived or lost: the identity holds ledger-wide.
    await expectHonestCounts(pipeline.deps.db);
    return run;
  };
  return Object.assign(pipeline, { config: resolved, load });
}

/** The stored rejects of the file with this key (its only version), in line order. */
async function rejectRowsOfKey(db: Kysely<Database>, key: string) {
  const file = await db
    .selectFrom('dropload.file')
    .selectAll()
    .where('key', '=', key)
    .executeTakeFirstOrThrow();
  return rejectsOf(db, file.id);
}

/** The rejects of the file with this key (its only version), as a test compares them. */
export async function rejectsOfKey(db: Kysely<Database>, key: string) {
  return (await rejectRowsOfKey(db, key)).map((r) => ({
    line: r.line,
    column: r.column,
    reason: r.reason,
    raw: r.raw,
  }));
}

/** The kinds of the rejects of the file with this key, in line order. */
export async function rejectKindsOfKey(db: Kysely<Database>, key: string) {
  return (await rejectRowsOfKey(db, key)).map((r) => r.kind);
}
