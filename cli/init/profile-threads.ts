import { availableParallelism } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Quote } from '../../shared/config/dataset.ts';
import { ConfigError } from '../../shared/core/errors.ts';
import { textCursor } from '../../shared/formats/parsing.ts';
import { ColumnProfile, type ColumnState, PairProfile, type PairState } from './column-profile.ts';
import type { Columns } from './columns.ts';
import type { Misfit } from './file-profile.ts';
import { isGzip } from './file-profile.ts';
import { BLOCK_BYTES, type BlockEvent, textBlocks } from './text-blocks.ts';
import type { Shape } from './values.ts';

// A big CSV/TSV is profiled on worker threads split by COLUMNS: every thread parses every block in file
// order (so lines, misfits, the header and where blocks fall are the serial pass's), classifies only the
// columns it owns and skims the others. Each column's profile is then exactly the serial one, whatever
// the skimming (which depends on where blocks fall) did to it. Thread 0 also counts rows and misfits and
// follows the pairs, reading the paired columns whole.

/** A header as the threads get it: who owns which column, and what `keep` and `snake` said of each name. */
export interface ThreadHeader {
  kind: 'header';
  header: string[];
  line: number;
  /** The thread owning each column, by position. */
  owners: number[];
  keep: Record<string, boolean>;
  snake: Record<string, string>;
}

/** What every profiling thread is posted, in file order. */
export type ThreadEvent =
  | { kind: 'file'; name: string | undefined }
  | ThreadHeader
  | Exclude<BlockEvent, { kind: 'header' }>
  | { kind: 'end' };

/** A thread's profiles: its own columns'; thread 0's rows, misfits and pairs too. */
export interface ThreadResult {
  columns: ColumnState[];
  rows: number;
  misfits: Misfit[];
  misfitCount: number;
  quoteMisfit?: Misfit;
  pairs: PairState[];
}

export type ThreadReply = { done: number } | { result: ThreadResult };

export interface ThreadSetup {
  index: number;
  format: 'csv';
  delimiter: string;
  quote: Quote;
}

/** Files at least this big are profiled on threads: below, starting them costs more than they save (README, Performance). */
const THREADS_FROM_BYTES = 64 * 1024 * 1024;
/** Every thread parses every block: past a few, a thread more saves less than its parse costs. */
const MAX_THREADS = 3;
/** Blocks posted ahead of the slowest thread: bounds the memory held in flight (4 MB each, and its text per thread). */
const BLOCKS_AHEAD = 3;
/** The start of the first block read to guess what each column costs. */
const SAMPLE_BYTES = 256 * 1024;

/**
 * Threads for a CSV/TSV of `bytes`: DROPLOAD_INIT_THREADS when set (0: none), else one per core up to
 * MAX_THREADS for a big file, none for a small one or on one core.
 */
export function threadsFor(bytes: number, env: Record<string, string | undefined> = process.env): number {
  const raw = env.DROPLOAD_INIT_THREADS;
  if (raw !== undefined && raw !== '') {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 0)
      throw new ConfigError(`DROPLOAD_INIT_THREADS must be a whole number (0: none), got "${raw}"`);
    return n;
  }
  const cores = availableParallelism();
  return bytes >= THREADS_FROM_BYTES && cores > 1 ? Math.min(cores, MAX_THREADS) : 0;
}

/** A file of the table: its path, and its name for its misfits when the table has several. */
export interface TableFile {
  path: string;
  name: string | undefined;
}

/** Profiles the files into `columns` on `count` threads; the result is the serial pass's, exactly. */
export async function profileOnThreads(files: TableFile[], columns: Columns, count: number): Promise<void> {
  const pool = new ThreadPool(columns, count);
  try {
    for (const file of files) await pool.read(file);
    pool.rebuild(await pool.end());
  } finally {
    await pool.stop();
  }
}

class ThreadPool {
  readonly #columns: Columns;
  readonly #workers: Worker[];
  readonly #done: number[];
  readonly #results: Promise<ThreadResult>[];
  #posted = 0;
  readonly #slots: Uint8Array[] = [];
  #owners: number[] | undefined;
  #wake: (() => void) | undefined;
  #failed: Error | undefined;

  constructor(columns: Columns, count: number) {
    this.#columns = columns;
    // The sources (.ts) in this repository, the built package's .js: the entry sits beside this module.
    const ext = path.extname(fileURLToPath(import.meta.url));
    const entry = new URL(`./profile-worker${ext}`, import.meta.url);
    const { delimiter, quote } = columns.profile;
    this.#workers = Array.from(
      { length: count },
      (_, index) =>
        new Worker(entry, { workerData: { index, format: 'csv', delimiter, quote } satisfies ThreadSetup }),
    );
    this.#done = this.#workers.map(() => 0);
    this.#results = this.#workers.map((w, i) => this.#listen(w, i));
    // A thread failing mid-file is reported by `#room` or `end`: not as a rejection nobody awaits yet.
    for (const r of this.#results) r.catch(() => {});
  }

  #listen(worker: Worker, index: number): Promise<ThreadResult> {
    return new Promise((resolve, reject) => {
      const fail = (err: Error) => {
        this.#failed ??= err;
        this.#wake?.();
        reject(err);
      };
      worker.on('message', (m: ThreadReply) => {
        if ('result' in m) return resolve(m.result);
        this.#done[index] = m.done;
        this.#wake?.();
      });
      worker.on('error', fail);
      worker.on('exit', (code) =>
        fail(new Error(`init profiling thread ${index} ended (exit code ${code})`)),
      );
    });
  }

  #post(event: ThreadEvent): void {
    for (const w of this.#workers) w.postMessage(event);
  }

  /** Waits while the slowest thread is BLOCKS_AHEAD blocks behind: the file is read no faster than profiled. */
  async #room(): Promise<void> {
    while (!this.#failed && this.#posted - Math.min(...this.#done) >= BLOCKS_AHEAD)
      await new Promise<void>((r) => {
        this.#wake = r;
      });
    if (this.#failed) throw this.#failed;
  }

  /**
   * The block copied into shared memory the threads all read (each decodes it itself), in one of
   * BLOCKS_AHEAD buffers used in turn: `#room` has let the block in only once every thread is done
   * with the one before in that buffer. Reused, not allocated per block: a block's memory is freed only
   * when each thread's heap collects its handle, which a thread that allocates little does rarely.
   */
  #slot(bytes: Uint8Array): Uint8Array {
    const i = this.#posted % BLOCKS_AHEAD;
    let slot = this.#slots[i];
    if (!slot || slot.length < bytes.length) {
      slot = new Uint8Array(new SharedArrayBuffer(Math.max(bytes.length, BLOCK_BYTES)));
      this.#slots[i] = slot;
    }
    slot.set(bytes);
    return slot.subarray(0, bytes.length);
  }

  async read(file: TableFile): Promise<void> {
    const { profile } = this.#columns;
    this.#post({ kind: 'file', name: file.name });
    // The header is posted with the columns' owners, planned on the records after it.
    let header: Extract<BlockEvent, { kind: 'header' }> | undefined;
    for await (const event of textBlocks(file.path, await isGzip(file.path), profile)) {
      if (event.kind === 'header') {
        header = event;
        continue;
      }
      if (header) this.#postHeader(header, event);
      header = undefined;
      if (event.kind === 'oversized') this.#post(event);
      else {
        await this.#room();
        this.#post({ kind: 'records', bytes: this.#slot(event.bytes) });
        this.#posted++;
      }
    }
    if (header) this.#postHeader(header, undefined);
  }

  #postHeader(event: Extract<BlockEvent, { kind: 'header' }>, next: BlockEvent | undefined): void {
    const columns = this.#columns;
    for (const name of event.header) columns.column(name);
    columns.followPairs();
    const cols = columns.profile.columns;
    const sample = next?.kind === 'records' ? next.bytes.subarray(0, SAMPLE_BYTES) : new Uint8Array();
    this.#owners ??= planOwners(sampleCosts(columns, event.header, sample), this.#workers.length);
    // Columns a later file adds (not planned): spread in turn.
    const owners = cols.map((_, i) => this.#owners?.[i] ?? i % this.#workers.length);
    const keep: Record<string, boolean> = {};
    const snake: Record<string, string> = {};
    for (const c of cols) {
      keep[c.name] = c.nameless === undefined;
      snake[c.name] = columns.snake(c.name);
    }
    this.#post({ ...event, owners, keep, snake });
  }

  async end(): Promise<ThreadResult[]> {
    this.#post({ kind: 'end' });
    return Promise.all(this.#results);
  }

  /** The profile from the threads' parts: each column from its owner, rows, misfits and pairs from thread 0. */
  rebuild(results: ThreadResult[]): void {
    const { profile } = this.#columns;
    for (const r of results)
      for (const state of r.columns) profile.columns[state.position] = ColumnProfile.restore(state);
    const first = results[0];
    if (!first) return;
    profile.rows = first.rows;
    profile.misfits = first.misfits;
    profile.misfitCount = first.misfitCount;
    if (first.quoteMisfit) profile.quoteMisfit = first.quoteMisfit;
    profile.pairs = first.pairs.map((p) => PairProfile.restore(p));
  }

  async stop(): Promise<void> {
    for (const w of this.#workers) w.removeAllListeners('exit');
    await Promise.all(this.#workers.map((w) => w.terminate()));
  }
}

/**
 * What a value of each kind roughly costs to classify, relative to a text value's check (its shape
 * test, with the parse's cut); a kept distinct set adds a hash. Rough guesses, measured on the bench file
 * only as far as: timestamps (a pattern) cost most, a skimmed column least.
 */
const KIND_COST: Record<Shape['kind'], number> = {
  boolean: 1,
  integer: 2,
  decimal: 2,
  date: 3,
  timestamp: 4,
  timestamptz: 4,
  uuid: 3,
  json: 3,
  text: 1,
};
const DISTINCT_COST = 3;
const SKIMMED_COST = 0.2;
const PAIR_COST = 4;
const SAMPLE_RECORDS = 2000;

/** Each column's guessed cost (by position) from the first records, and as its first entry thread 0's own: the pairs. */
function sampleCosts(
  columns: Columns,
  header: string[],
  sample: Uint8Array,
): { costs: number[]; pairs: number } {
  const { profile } = columns;
  const probes = profile.columns.map((c) => {
    const probe = new ColumnProfile(c.name, c.position);
    probe.nameless = c.nameless;
    if (c.nameless) probe.dropDistinct(c.nameless);
    return probe;
  });
  const cursor = textCursor(new TextDecoder().decode(sample), {
    format: 'csv',
    delimiter: profile.delimiter,
    quote: profile.quote,
    columns: header,
    firstLine: 1,
  });
  for (let n = 0; n < SAMPLE_RECORDS && cursor.next(); n++)
    cursor.values?.forEach((v, i) => {
      probes[i]?.addText(v);
    });
  const paired = new Set(profile.pairs.flatMap((p) => p.columns));
  const costs = probes.map((p) => columnCost(p, paired.has(p.name)));
  return { costs, pairs: profile.pairs.length * PAIR_COST };
}

function columnCost(probe: ColumnProfile, paired: boolean): number {
  if (probe.settled && !paired) return SKIMMED_COST;
  let sum = 0;
  for (const [kind, n] of probe.kinds) sum += n * KIND_COST[kind];
  const perValue = probe.values > 0 ? sum / probe.values : KIND_COST.text;
  return perValue + (probe.distinct ? DISTINCT_COST : 0);
}

/** Costliest column first, each to the least loaded thread (thread 0 starts with the pairs). */
function planOwners({ costs, pairs }: { costs: number[]; pairs: number }, count: number): number[] {
  const load = Array.from({ length: count }, (_, i) => (i === 0 ? pairs : 0));
  const owners = costs.map(() => 0);
  const order = costs.map((_, i) => i).sort((a, b) => (costs[b] ?? 0) - (costs[a] ?? 0) || a - b);
  for (const i of order) {
    const least = load.indexOf(Math.min(...load));
    owners[i] = least;
    load[least] = (load[least] ?? 0) + (costs[i] ?? 0);
  }
  return owners;
}
