import { stat } from 'node:fs/promises';
import type { Kysely } from 'kysely';
import type { LocalPipeline } from '../local/local-pipeline.ts';
import type { FileEtag } from '../local/object-etag.ts';
import type { ObjectRef } from '../shared/aws/s3-events.ts';
import type { ResolvedConfig } from '../shared/config/config.ts';
import type { Dataset } from '../shared/config/dataset.ts';
import { localFiles, placeFile } from '../shared/config/local-files.ts';
import { UsageError } from '../shared/core/errors.ts';
import { WAIT_RETRY } from '../shared/core/topology.ts';
import { filesById, filesByKey, ledgerNow, withoutNul } from '../shared/ledger/ledger.ts';
import { type Database, FINAL_STATES, type FileRow } from '../shared/ledger/schema.ts';
import { readSnapshot } from '../shared/ledger/snapshot.ts';
import { filesWithWaitingRows, retriesInFlight, waitSummaries } from '../shared/ledger/waiting.ts';
import { PARKED_RETRY_SECONDS } from '../shared/load/retry-chain.ts';
import { type FileReport, queuedReport, reportOf, withRejects } from './report.ts';

export interface Upload {
  path: string;
  key: string;
  dataset: Dataset;
}

/**
 * Which dataset each local file goes to (`placeFile`: `--dataset`, else the nearest folder named like
 * a dataset, else the dataset named after the file), and its key under that dataset's prefix.
 */
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
  const names = config.datasets.map((d) => d.name);
  const uploads = (await localFiles(paths)).map((local) => {
    const placed = placeFile(local, names, named?.name);
    const dataset = config.datasets.find((d) => d.name === placed?.dataset);
    if (!placed || !dataset) {
      throw new UsageError(
        `${local.file}: cannot tell its dataset; pass --dataset, put it in a folder named after one, or name it after one`,
      );
    }
    return { path: local.file, key: `${dataset.prefix}${placed.tail}`, dataset };
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

/** How often `run` reads the ledger while no handler ends: progress, and waits no invocation ends (retries). */
const POLL_MS = 100;

/** A state `run` stops waiting on: final, waiting for parents another file brings, or stalled (a person's turn). */
const settledState = (f: FileRow) =>
  FINAL_STATES.includes(f.state) || ['waiting', 'stalled'].includes(f.state);

/**
 * Whether `run` may end: every file is settled, no handler is running (its commit's wake or receipt
 * may be on its way), and no retry of their waiting rows is due within a moment or running. The
 * handlers are asked first: what one of them did before then is in the ledger read after.
 */
export async function quiet(pipeline: LocalPipeline, files: (FileRow | undefined)[]): Promise<boolean> {
  if (pipeline.busy() > 0 || !files.every((f) => f && settledState(f))) return false;
  const live = (files as FileRow[]).filter((f) => f.state === 'waiting').map((f) => f.id);
  const { db, waitRetry } = pipeline.deps;
  const inFlight = await retriesInFlight(db, live, PARKED_RETRY_SECONDS, waitRetry ?? WAIT_RETRY);
  return inFlight.size === 0;
}

/** The files' reports, what their rows wait for included. */
export async function reportsOf(db: Kysely<Database>, files: FileRow[], rejectsShown: number) {
  return readSnapshot(db, async (snap) => {
    const waits = await waitSummaries(
      snap,
      files.map((f) => f.id),
    );
    return Promise.all(
      files.map((f) =>
        withRejects(
          snap,
          f,
          rejectsShown,
          waits.find((w) => w.fileId === f.id),
        ),
      ),
    );
  });
}

const addNote = (r: FileReport, note: string) => {
  r.note = r.note ? `${r.note}; ${note}` : note;
};

/**
 * A file registered well before this run started was uploaded by an earlier one: either that run
 * finished it (the same bytes are not loaded again) or it ended mid-file (killed, timed out) and this
 * run resumed it.
 */
function earlierRunNote(f: FileRow, since: number): string | undefined {
  if (f.created_at.getTime() >= since) return undefined;
  const finished = f.finished_at ? new Date(f.finished_at) : undefined;
  if (finished && finished.getTime() < since)
    return `this exact version was already loaded at ${finished.toISOString()}; nothing was loaded again (the counts are that load's)`;
  const by = `registered by an earlier run at ${f.created_at.toISOString()}, which did not finish it`;
  return FINAL_STATES.includes(f.state) ? `${by}; this run did` : by;
}

/** A local file's version as the run can tell it cheaply: changed in place, its size or mtime moves. */
async function versionOf(file: string): Promise<string> {
  const s = await stat(file).catch(() => undefined);
  return s ? `${s.size}:${s.mtimeMs}` : 'gone';
}

/** The run's report: the uploaded files in their order, then the earlier waiting ones that finished in it. */
async function runReport(
  db: Kysely<Database>,
  uploaded: { refs: ObjectRef[]; files: (FileRow | undefined)[]; since: number },
  before: FileRow[],
  rejectsShown: number,
): Promise<FileReport[]> {
  const found = uploaded.files.filter((f): f is FileRow => f !== undefined);
  const own = await reportsOf(db, found, rejectsShown);
  const reports = uploaded.refs.map((ref, i) => {
    const f = uploaded.files[i];
    const r = f ? (own[found.indexOf(f)] as FileReport) : queuedReport(ref.key);
    const earlier = f && earlierRunNote(f, uploaded.since);
    if (earlier) addNote(r, earlier);
    return r;
  });
  const finished = before.filter((f) => FINAL_STATES.includes(f.state) && !found.some((c) => c.id === f.id));
  for (const r of await reportsOf(db, finished, rejectsShown)) {
    addNote(r, 'its rows were waiting before this run; they finished during it');
    reports.push(r);
  }
  return reports;
}

/**
 * Uploads the files, then waits until the ledger shows each of them finished, or waiting for parent
 * rows no file in flight brings. Files whose rows were waiting before the run (from an earlier one)
 * are watched too: rows this run brings may be their parents; those that finish are reported after
 * the uploaded ones.
 */
export async function runFiles(
  pipeline: LocalPipeline,
  uploads: Upload[],
  options: {
    timeoutMs: number;
    rejectsShown: number;
    onProgress?: Progress;
    /** A file's ETag worked out beforehand (local/etag-thread.ts), if any: linking it then skips the hash. */
    etagOf?: (path: string) => Promise<FileEtag | undefined>;
  },
): Promise<{ reports: FileReport[]; timedOut: boolean }> {
  const { db } = pipeline.deps;
  // On the ledger's clock, as the files' own timestamps: an earlier run's file is one stamped before it.
  const since = (await ledgerNow(db)).getTime();
  // Only files whose chunks are done: one still `loading` from an earlier run lost its chunk messages with
  // that run's emulator, and loads again only when announced again (`dev`, `backfill --resume`).
  const waitingBefore = (await filesWithWaitingRows(db))
    .filter((f) => f.state === 'waiting')
    .map((f) => f.id);
  const refs: ObjectRef[] = [];
  const versions: string[] = [];
  for (const u of uploads) {
    versions.push(await versionOf(u.path));
    refs.push(await pipeline.drop(u.path, u.key, await options.etagOf?.(u.path)));
  }
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const rows = await filesByKey(
      db,
      pipeline.stack.bucket,
      refs.map((r) => r.key),
    );
    const files = refs.map((ref) =>
      rows.findLast((f) => f.key === withoutNul(ref.key) && f.etag === ref.etag),
    );
    const before = await filesById(db, waitingBefore);
    const done = await quiet(pipeline, [...files, ...before]);
    if (done || Date.now() > deadline) {
      const reports = await runReport(db, { refs, files, since }, before, options.rejectsShown);
      // A linked file is read where it lies until the end (local/linked-objects.ts): one changed in place
      // meanwhile fails as an overwritten object would, and its new bytes were never announced.
      for (const [i, u] of uploads.entries()) {
        if ((await versionOf(u.path)) !== versions[i]) {
          addNote(
            reports[i] as FileReport,
            `${u.path} changed on disk during this run: run it again to load it as it is now`,
          );
        }
      }
      return { reports, timedOut: !done };
    }
    options.onProgress?.(refs.map((ref, i) => (files[i] ? reportOf(files[i]) : queuedReport(ref.key))));
    // The ledger is read again when a split or load ends (its commit is then in), not up to a poll later.
    await Promise.race([new Promise((r) => setTimeout(r, POLL_MS)), pipeline.invocationEnded()]);
  }
}

/** `run`'s exit code when a file waits for parents and none failed (README, "Exit codes"). */
export const EXIT_WAITING = 3;

/**
 * `run`'s exit code: 0 every file loaded; 1 a file failed or stalled, or the run timed out; 3 none
 * failed, but rows of a file wait for parent rows no file of this run brought (`waiting`).
 */
export function runExitCode(reports: FileReport[], timedOut: boolean): number {
  if (timedOut || reports.some((r) => r.state !== 'loaded' && r.state !== 'waiting')) return 1;
  return reports.some((r) => r.state === 'waiting') ? EXIT_WAITING : 0;
}
