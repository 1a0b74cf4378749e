import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Kysely } from 'kysely';
import type { Upload } from '../../cli/run.ts';
import { type LocalPipeline, type PipelineOptions, startPipeline } from '../../local/local-pipeline.ts';
import type { ResolvedConfig } from '../../shared/config/config.ts';
import { filesByKey } from '../../shared/ledger/ledger.ts';
import type { Database, FileRow } from '../../shared/ledger/schema.ts';
import { resetDatabase } from './pipeline.ts';

export interface RunnerOptions extends Partial<PipelineOptions> {
  /** On PGlite its data lives here, so that a later runner finds what this one left (ignored on Postgres). */
  stateDir?: string;
  /** Delete the emulator's state first: a runner whose emulator kept nothing, as `dropload run`'s. */
  freshQueues?: boolean;
  /** Drop the ledger and the tables first. */
  fresh?: boolean;
}

/**
 * Local runners over the test database (DATABASE_URL, else PGlite), each a whole pipeline as `run` or
 * `dev` starts one; `stopAll` (in an afterEach) stops what a test left running.
 */
export function localRunners(config: ResolvedConfig, tables: string[]) {
  const running: LocalPipeline[] = [];
  const postgres = process.env.DATABASE_URL;

  async function start(options: RunnerOptions = {}): Promise<LocalPipeline> {
    const { stateDir, freshQueues, fresh, ...rest } = options;
    if (fresh) await resetDatabase(tables);
    if (stateDir && freshQueues) {
      await rm(path.join(stateDir, 'queues'), { recursive: true, force: true });
      await rm(path.join(stateDir, 'objects'), { recursive: true, force: true });
    }
    const runner = await startPipeline({
      workers: 2,
      logLevel: 'SILENT',
      ...rest,
      config,
      env: { ...process.env, AWS_ENDPOINT_URL: undefined },
      ...(postgres ? {} : { stateDir }),
    });
    running.push(runner);
    return runner;
  }

  async function stop(runner: LocalPipeline): Promise<void> {
    running.splice(running.indexOf(runner), 1);
    await runner.stop();
  }

  async function stopAll(): Promise<void> {
    for (const r of running.splice(0)) await r.stop();
  }

  /** A local file for the dataset named `name`, in a folder of its own below `dir`, named as the key's last part. */
  async function upload(dir: string, name: string, key: string, content: string): Promise<Upload> {
    const dataset = config.datasets.find((d) => d.name === name);
    if (!dataset) throw new Error(`no dataset ${name}`);
    const folder = await mkdtemp(path.join(dir, 'file-'));
    const file = path.join(folder, path.basename(key));
    await writeFile(file, content);
    return { path: file, key, dataset };
  }

  return { start, stop, stopAll, upload };
}

/** The newest ledger file of the key in the local bucket; throws when there is none. */
export async function fileOf(db: Kysely<Database>, key: string): Promise<FileRow> {
  const file = (await filesByKey(db, 'dropload-local', [key])).at(-1);
  if (!file) throw new Error(`no file ${key}`);
  return file;
}

/** Polls `probe` until it returns a value; throws naming `what` after `ms`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
