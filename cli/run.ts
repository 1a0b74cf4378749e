import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { LocalPipeline } from '../local/local-pipeline.ts';
import type { ObjectRef } from '../shared/aws/s3-events.ts';
import type { ResolvedConfig } from '../shared/config/config.ts';
import type { Dataset } from '../shared/config/dataset.ts';
import { UsageError } from '../shared/core/errors.ts';
import { filesByKey, withoutNul } from '../shared/ledger/ledger.ts';
import { FINAL_STATES } from '../shared/ledger/schema.ts';
import { type FileReport, queuedReport, reportOf, withRejects } from './report.ts';

export interface Upload {
  path: string;
  key: string;
  dataset: Dataset;
}

interface LocalFile {
  file: string;
  /** The folder given on the command line it was found under (its own folder for a file argument). */
  base: string;
}

async function expand(paths: string[]): Promise<LocalFile[]> {
  const out: LocalFile[] = [];
  for (const p of paths) {
    const s = await stat(p).catch(() => undefined);
    if (!s) throw new UsageError(`no such file: ${p}`);
    if (s.isDirectory()) {
      const entries = (await readdir(p, { recursive: true, withFileTypes: true })).filter((e) => e.isFile());
      const files = entries.map((e) => path.join(e.parentPath, e.name)).sort();
      out.push(...files.map((file) => ({ file, base: p })));
    } else out.push({ file: p, base: path.dirname(p) });
  }
  return out;
}

/** The key's tail: the path below the dataset's folder (or the folder given), so `2024/01.csv` and `2025/01.csv` stay apart. */
function keyTail(file: string, from: string): string {
  return path.relative(from, file).split(path.sep).join('/');
}

/** Which dataset a local file goes to: `--dataset`, else the nearest folder named like a dataset. */
export async function planUploads(
  paths: string[],
  config: ResolvedConfig,
  datasetName?: string,
): Promise<Upload[]> {
  const named = datasetName ? config.datasets.find((d) => d.name === datasetName) : undefined;
  if (datasetName && !named) {
    throw new UsageError(
      `--dataset ${datasetName}: no such dataset (have ${config.datasets.map((d) => d.name).join(', ')})`,
    );
  }
  const uploads = (await expand(paths)).map(({ file, base }) => {
    const absolute = path.resolve(file);
    const parts = absolute.split(path.sep);
    // The nearest enclosing folder named like a dataset.
    const at = parts.findLastIndex(
      (f, i) => i < parts.length - 1 && config.datasets.some((d) => d.name === f),
    );
    const dataset = named ?? (at >= 0 ? config.datasets.find((d) => d.name === parts[at]) : undefined);
    if (!dataset) {
      throw new UsageError(
        `${file}: cannot tell its dataset; pass --dataset or put it in a folder named after one`,
      );
    }
    const from = !named && at >= 0 ? parts.slice(0, at + 1).join(path.sep) : path.resolve(base);
    return { path: file, key: `${dataset.prefix}${keyTail(absolute, from)}`, dataset };
  });
  const seen = new Map<string, string>();
  for (const u of uploads) {
    const other = seen.get(u.key);
    if (other) throw new UsageError(`${other} and ${u.path} would both upload to ${u.key}`);
    seen.set(u.key, u.path);
  }
  return uploads;
}

export type Progress = (reports: FileReport[]) => void;

/** Uploads the files, then waits until the ledger shows each of them finished. */
export async function runFiles(
  pipeline: LocalPipeline,
  uploads: Upload[],
  options: { timeoutMs: number; rejectsShown: number; onProgress?: Progress },
): Promise<{ reports: FileReport[]; timedOut: boolean }> {
  // Registered well before this run started: the same bytes were loaded before, and are not loaded again.
  const earlier = Date.now() - 2000;
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
    const current = refs.map((ref) =>
      rows.findLast((f) => f.key === withoutNul(ref.key) && f.etag === ref.etag),
    );
    // A stalled file waits for a person (its message is dead-lettered): waiting on will not finish it.
    const done = current.every((f) => f && (FINAL_STATES.includes(f.state) || f.state === 'stalled'));
    if (done || Date.now() > deadline) {
      const reports = await Promise.all(
        refs.map((ref, i) => {
          const f = current[i];
          return f ? withRejects(db, f, options.rejectsShown) : queuedReport(ref.key);
        }),
      );
      reports.forEach((r, i) => {
        const f = current[i];
        if (f && f.created_at.getTime() < earlier) {
          const again = `this exact version was already loaded at ${f.created_at.toISOString()}; nothing was loaded again (the counts are that load's)`;
          r.note = r.note ? `${r.note}; ${again}` : again;
        }
      });
      return { reports, timedOut: !done };
    }
    options.onProgress?.(refs.map((ref, i) => (current[i] ? reportOf(current[i]) : queuedReport(ref.key))));
    await new Promise((r) => setTimeout(r, 100));
  }
}
