import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import pg from 'pg';
import { type LocalPipeline, startPipeline } from '../local/local-pipeline.ts';
import { resolveConfig } from '../shared/config/config.ts';
import { filesByKey } from '../shared/ledger/ledger.ts';
import type { FileRow } from '../shared/ledger/schema.ts';
import benchConfig from './bench.config.ts';
import { ensureDatabase, resetDatabase } from './db.ts';
import { generateCsv } from './generate.ts';
import waitingConfig, { childrenDataset, parentsDataset, WAITING_DDL } from './waiting.config.ts';

// `npm run bench:latency`, on the local stack against DATABASE_URL:
// 1. how long after its upload a 100-row file's rows are visible in Postgres (event-source polling
//    included): five drops, each and the worst;
// 2. how long after its parent's commit a file waiting for that parent is loaded: 20 trials, each a
//    50-row child file dropped first and left waiting until its retry backs off (its next retry 3 s or
//    more away, so only the parent's wake can load it sooner), then the one-row parent file. Both times
//    are the ledger's (the database clock): the parent file's and the child file's `finished_at`.

const url = process.env.DATABASE_URL;
if (!url) throw new Error('DATABASE_URL is not set: the latency check loads into a real Postgres');
await ensureDatabase(url);
await resetDatabase(url);
const dir = await mkdtemp(path.join(tmpdir(), 'dropload-latency-'));
const env = { ...process.env, AWS_ENDPOINT_URL: undefined };

async function visibleAfterUpload(): Promise<number[]> {
  const config = resolveConfig(benchConfig, 'bench config');
  const pipeline = await startPipeline({ config, env, logLevel: 'SILENT' });
  const times: number[] = [];
  try {
    for (let round = 0; round < 5; round++) {
      const file = path.join(dir, `r${round}.csv`);
      await generateCsv(file, 100, 1000 + round);
      await sql`truncate bench_rows`.execute(pipeline.deps.db);
      const started = performance.now();
      await pipeline.upload(file, `${config.datasets[0]?.prefix}latency-${round}.csv`);
      for (;;) {
        const { rows } = await sql<{ n: number }>`select count(*)::int as n from bench_rows`.execute(
          pipeline.deps.db,
        );
        if ((rows[0]?.n ?? 0) > 0) break;
        await new Promise((r) => setTimeout(r, 5));
      }
      times.push(performance.now() - started);
    }
  } finally {
    await pipeline.stop();
  }
  return times;
}

const TRIALS = 20;
const CHILDREN = 50;

async function until<T>(probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('a trial did not finish in two minutes');
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function fileOf(pipeline: LocalPipeline, key: string): Promise<FileRow | undefined> {
  return (await filesByKey(pipeline.deps.db, pipeline.stack.bucket, [key])).at(-1);
}

/** One trial: the child file waits (backed off), the parent lands; ms from the parent's commit to the children's. */
async function childAfterParent(pipeline: LocalPipeline, trial: number): Promise<number> {
  const childKey = `${childrenDataset.prefix ?? 'incoming/bench-children/'}trial-${trial}.csv`;
  const parentKey = `${parentsDataset.prefix ?? 'incoming/bench-parents/'}trial-${trial}.csv`;
  const lines = ['child_id,parent_id'];
  for (let i = 0; i < CHILDREN; i++) lines.push(`c${trial}-${i},${trial + 1}`);
  await writeFile(path.join(dir, 'child.csv'), `${lines.join('\n')}\n`);
  await writeFile(path.join(dir, 'parent.csv'), `parent_id,name\n${trial + 1},parent ${trial + 1}\n`);
  await pipeline.upload(path.join(dir, 'child.csv'), childKey);
  await until(async () => {
    const { rows } = await sql<{ id: number }>`select id from dropload.file where key = ${childKey}
      and state = 'waiting' and retry_due > now() + interval '3 seconds'`.execute(pipeline.deps.db);
    return rows[0];
  });
  await pipeline.upload(path.join(dir, 'parent.csv'), parentKey);
  const { parent, child } = await until(async () => {
    const [p, c] = [await fileOf(pipeline, parentKey), await fileOf(pipeline, childKey)];
    return p?.state === 'loaded' && c?.state === 'loaded' ? { parent: p, child: c } : undefined;
  });
  if (child.rows_inserted !== CHILDREN)
    throw new Error(`trial ${trial}: ${child.rows_inserted} children loaded`);
  return new Date(child.finished_at ?? 0).getTime() - new Date(parent.finished_at ?? 0).getTime();
}

async function waitingChildren(): Promise<number[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(WAITING_DDL).finally(() => client.end());
  const config = resolveConfig(waitingConfig, 'bench/waiting.config.ts');
  const pipeline = await startPipeline({ config, env, logLevel: 'SILENT' });
  const times: number[] = [];
  try {
    for (let trial = 0; trial < TRIALS; trial++) times.push(await childAfterParent(pipeline, trial));
  } finally {
    await pipeline.stop();
  }
  return times;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

const visible = (await visibleAfterUpload()).map((t) => Math.round(t));
process.stdout.write(
  `100-row file visible after (ms): ${visible.join(', ')}; worst ${Math.max(...visible)} ms\n`,
);
const woken = await waitingChildren();
process.stdout.write(
  `waiting children loaded after their parent's commit (ms, ${TRIALS} trials): ${woken.join(', ')}; median ${median(woken)}, worst ${Math.max(...woken)} ms (goal: under 2000)\n`,
);
