import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { ResolvedConfig } from '../shared/config.ts';
import type { Dataset } from '../shared/dataset.ts';
import { FINAL_STATES } from '../shared/db/schema.ts';
import { ConfigError } from '../shared/errors.ts';
import { filesByKey } from '../shared/ledger.ts';
import type { ObjectRef } from '../shared/s3-events.ts';
import type { LocalPipeline } from './local-pipeline.ts';
import { type FileReport, queuedReport, reportOf, withRejects } from './report.ts';

export interface Upload {
  path: string;
  key: string;
  dataset: Dataset;
}

async function expand(paths: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) {
    const s = await stat(p).catch(() => undefined);
    if (!s) throw new ConfigError(`no such file: ${p}`);
    if (s.isDirectory()) {
      const entries = (await readdir(p, { recursive: true, withFileTypes: true })).filter((e) => e.isFile());
      out.push(...entries.map((e) => path.join(e.parentPath, e.name)).sort());
    } else out.push(p);
  }
  return out;
}

/** Which dataset a local file goes to: `--dataset`, else the nearest folder named like a dataset. */
export async function planUploads(
  paths: string[],
  config: ResolvedConfig,
  datasetName?: string,
): Promise<Upload[]> {
  const named = datasetName ? config.datasets.find((d) => d.name === datasetName) : undefined;
  if (datasetName && !named) {
    throw new ConfigError(
      `--dataset ${datasetName}: no such dataset (have ${config.datasets.map((d) => d.name).join(', ')})`,
    );
  }
  return (await expand(paths)).map((file) => {
    const folders = path.resolve(file).split(path.sep).slice(0, -1).reverse();
    const folder = folders.find((f) => config.datasets.some((d) => d.name === f));
    const dataset = named ?? config.datasets.find((d) => d.name === folder);
    if (!dataset) {
      throw new ConfigError(
        `${file}: cannot tell its dataset; pass --dataset or put it in a folder named after one`,
      );
    }
    return { path: file, key: `${dataset.prefix}${path.basename(file)}`, dataset };
  });
}

export type Progress = (reports: FileReport[]) => void;

/** Uploads the files, then waits until the ledger shows each of them finished. */
export async function runFiles(
  pipeline: LocalPipeline,
  uploads: Upload[],
  options: { timeoutMs: number; rejectsShown: number; onProgress?: Progress },
): Promise<{ reports: FileReport[]; timedOut: boolean }> {
  const refs: ObjectRef[] = [];
  for (const u of uploads) refs.push(await pipeline.upload(u.path, u.key));
  const { db } = pipeline.deps;
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const rows = await filesByKey(
      db,
      pipeline.stack.bucket,
      refs.map((r) => r.key),
    );
    const current = refs.map((ref) => rows.findLast((f) => f.key === ref.key && f.etag === ref.etag));
    const done = current.every((f) => f && FINAL_STATES.includes(f.state));
    if (done || Date.now() > deadline) {
      const reports = await Promise.all(
        refs.map((ref, i) => {
          const f = current[i];
          return f ? withRejects(db, f, options.rejectsShown) : queuedReport(ref.key);
        }),
      );
      return { reports, timedOut: !done };
    }
    options.onProgress?.(refs.map((ref, i) => (current[i] ? reportOf(current[i]) : queuedReport(ref.key))));
    await new Promise((r) => setTimeout(r, 100));
  }
}
