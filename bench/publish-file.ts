import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { runFiles, type Upload } from '../cli/run.ts';
import { startPipeline } from '../local/local-pipeline.ts';
import { defineConfig, resolveConfig } from '../shared/config/config.ts';
import { defineDataset } from '../shared/config/dataset.ts';
import { benchDataset } from './bench.config.ts';
import { countRows, ensureDatabase, resetDatabase } from './db.ts';
import { generateCsv, validRows } from './generate.ts';

// One multi-chunk file loaded end to end on the local stack with N load workers, as `publish: 'chunk'`
// and as `publish: 'file'` (chunks staged, published by the last one), alternately: staging should cost
// the publish step (one INSERT … SELECT from the stage), not the chunks' concurrency. Besides seconds
// (which a busy machine blurs), it samples pg_stat_activity every 20 ms while the file loads: how many
// of dropload's sessions are inside a transaction, and how many of those wait on a lock.
//
//   DATABASE_URL=postgres://postgres@127.0.0.1:5432/dropload_bench node bench/publish-file.ts --workers 4

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000' },
    workers: { type: 'string', default: '4' },
    repeat: { type: 'string', default: '3' },
  },
});
const rows = Number(values.rows);
const workers = Number(values.workers);
const url = process.env.DATABASE_URL;
if (!url) throw new Error('bench/publish-file.ts needs DATABASE_URL');

const config = resolveConfig(
  defineConfig({
    datasets: [
      { ...benchDataset, name: 'chunked' },
      defineDataset({ ...benchDataset, name: 'staged', publish: 'file' }),
    ],
  }),
  'bench/publish-file.ts',
);

interface Sample {
  at: number;
  open: number;
  waiting: number;
  done: number;
}

/**
 * Samples dropload's sessions (application_name `dropload`) until stopped: open transactions, lock waits,
 * and the file's chunks done, so the time to load all chunks but the last is told apart from the last
 * chunk's transaction, which also publishes a staged file.
 */
function sessionSampler(databaseUrl: string, started: number) {
  const client = new pg.Client({ connectionString: databaseUrl });
  const samples: Sample[] = [];
  let running = true;
  const loop = (async () => {
    await client.connect();
    while (running) {
      const { rows } = await client.query<Omit<Sample, 'at'>>(
        `select count(*) filter (where xact_start is not null)::int as open,
                count(*) filter (where wait_event_type = 'Lock')::int as waiting,
                (select coalesce(max(chunks_done), 0)::int from dropload.file) as done
         from pg_stat_activity where application_name = 'dropload' and pid <> pg_backend_pid()`,
      );
      if (rows[0]) samples.push({ at: (performance.now() - started) / 1000, ...rows[0] });
      await new Promise((r) => setTimeout(r, 20));
    }
    await client.end();
  })();
  return {
    stop: async (chunks: number) => {
      running = false;
      await loop;
      const loading = samples.filter((x) => x.done < chunks - 1);
      const mean = (f: (x: Sample) => number) =>
        loading.reduce((a, x) => a + f(x), 0) / Math.max(1, loading.length);
      return {
        allButLast: samples.find((x) => x.done >= chunks - 1)?.at ?? Number.NaN,
        open: mean((x) => x.open),
        waiting: mean((x) => x.waiting),
      };
    },
  };
}

async function once(dataset: 'chunked' | 'staged', file: string, run: number) {
  await resetDatabase(url as string);
  const pipeline = await startPipeline({ config, workers, logLevel: 'ERROR' });
  let sampler: ReturnType<typeof sessionSampler> | undefined;
  try {
    const target = config.datasets.find((d) => d.name === dataset);
    if (!target) throw new Error(dataset);
    const uploads: Upload[] = [{ path: file, key: `${target.prefix}run-${run}.csv`, dataset: target }];
    let dropped = 0;
    const upload = pipeline.upload;
    pipeline.upload = async (p, key) => {
      const ref = await upload(p, key);
      dropped = performance.now();
      sampler = sessionSampler(url as string, dropped);
      return ref;
    };
    const { reports } = await runFiles(pipeline, uploads, { timeoutMs: 3_600_000, rejectsShown: 0 });
    const seconds = (performance.now() - dropped) / 1000;
    const report = reports[0];
    const sessions = await sampler?.stop(report?.chunks.total ?? 0);
    sampler = undefined;
    if (report?.state !== 'loaded') throw new Error(`${dataset} ended ${report?.state}: ${report?.error}`);
    const loaded = await countRows(url as string);
    if (loaded !== validRows(rows))
      throw new Error(`${dataset}: ${loaded} rows, expected ${validRows(rows)}`);
    return {
      seconds,
      chunks: report.chunks.total,
      allButLast: sessions?.allButLast ?? Number.NaN,
      open: sessions?.open ?? 0,
      waiting: sessions?.waiting ?? 0,
    };
  } finally {
    await sampler?.stop(0);
    await pipeline.stop();
  }
}

await ensureDatabase(url);
const out = path.join(import.meta.dirname, 'out');
await mkdir(out, { recursive: true });
const file = path.join(out, `publish-file-${rows}.csv`);
await stat(file).catch(() => generateCsv(file, rows));
type Run = { seconds: number; allButLast: number; open: number; waiting: number };
const times: Record<string, Run[]> = { chunked: [], staged: [] };
let chunks: number | null = null;
for (let i = 0; i < Number(values.repeat); i++) {
  for (const dataset of ['chunked', 'staged'] as const) {
    const r = await once(dataset, file, i);
    chunks = r.chunks;
    times[dataset]?.push(r);
    process.stderr.write(
      `${dataset} run ${i + 1}: ${r.seconds.toFixed(2)} s (all chunks but the last in ${r.allButLast.toFixed(2)} s, ${r.open.toFixed(2)} transactions open, ${r.waiting.toFixed(2)} waiting on a lock)\n`,
    );
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const { size } = await stat(file);
console.log(
  `${rows.toLocaleString('en-US')} rows (${(size / 1e6).toFixed(0)} MB, ${chunks} chunks), ${workers} load workers, median of ${values.repeat}:`,
);
for (const [name, runs] of Object.entries(times)) {
  const of = (f: (r: Run) => number) => median(runs.map(f)).toFixed(2);
  console.log(
    `  publish: '${name === 'staged' ? 'file' : 'chunk'}'  ${of((r) => r.seconds)} s (runs ${runs.map((r) => r.seconds.toFixed(2)).join(', ')}); all chunks but the last ${of((r) => r.allButLast)} s, with ${of((r) => r.open)} transactions open and ${of((r) => r.waiting)} waiting on a lock (mean)`,
  );
}
