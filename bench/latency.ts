import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { startPipeline } from '../local/local-pipeline.ts';
import { resolveConfig } from '../shared/config/config.ts';
import benchConfig from './bench.config.ts';
import { ensureDatabase, resetDatabase } from './db.ts';
import { generateCsv } from './generate.ts';

// `npm run bench:latency`: how long after its upload a 100-row file's rows are visible in Postgres,
// on the local stack (event-source polling included). Five drops; prints each and the worst.

const url = process.env.DATABASE_URL;
if (!url) throw new Error('DATABASE_URL is not set: the latency check loads into a real Postgres');
await ensureDatabase(url);
await resetDatabase(url);
const config = resolveConfig(benchConfig, 'bench config');
const pipeline = await startPipeline({
  config,
  env: { ...process.env, AWS_ENDPOINT_URL: undefined },
  logLevel: 'SILENT',
});
const dir = await mkdtemp(path.join(tmpdir(), 'dropload-latency-'));
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
const ms = times.map((t) => Math.round(t));
process.stdout.write(`100-row file visible after (ms): ${ms.join(', ')}; worst ${Math.max(...ms)} ms\n`);
