import { availableParallelism } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ResourceLimits, Worker } from 'node:worker_threads';
import type { RetryPolicy } from '../shared/core/backoff.ts';
import { ConfigError } from '../shared/core/errors.ts';
import type { WaitRetryTimes } from '../shared/core/topology.ts';
import type { SqsHandler } from './event-source.ts';
import type { Invocation, LoadThreadMessage } from './load-worker.ts';

/** What a load thread builds its dependencies from: plain data, as it crosses to the thread. */
export interface LoadThreadSetup {
  /** The config module: loaded again in the thread (a config may hold functions, which do not cross). */
  configFile: string;
  endpoint: string;
  databaseUrl: string;
  /** This thread's share of the connection budget. */
  poolMax: number;
  chunkQueueUrl: string;
  ingestQueueUrl: string;
  logLevel: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR' | 'SILENT';
  env: Record<string, string | undefined>;
  retry?: RetryPolicy;
  waitRetry?: WaitRetryTimes;
}

export interface LoadThreads {
  /** Runs an invocation on the least busy thread; a thread that dies fails its invocations, as a crashed Lambda does. */
  handler: SqsHandler;
  stop(): Promise<void>;
}

export interface LoadThreadsOptions {
  count: number;
  setup: LoadThreadSetup;
  resourceLimits?: ResourceLimits;
  /** The thread's module; default load-worker beside this one (fault tests hand one that crashes). */
  entry?: URL;
}

/**
 * The young generation the Lambdas run with (HANDLER_NODE_OPTIONS' --max-semi-space-size=8: two 8 MiB
 * semi-spaces and as much again for new large objects): a thread's heap then grows as a load worker's does.
 */
const LAMBDA_HEAP: ResourceLimits = { maxYoungGenerationSizeMb: 3 * 8 };

interface Pending {
  resolve: (r: Awaited<ReturnType<SqsHandler>>) => void;
  reject: (err: Error) => void;
}

/** The main thread's own connections: the split, the runner's ledger reads and the sweep. */
const MAIN_CONNECTIONS = 2;

export interface ThreadPlan {
  /** Load threads; 0: the loads run on the main thread. */
  threads: number;
  /** Connections each thread's pool may hold. */
  perThread: number;
  /** Connections the main thread's pool may hold: with the threads', the budget. */
  main: number;
}

/**
 * Load threads asked for: DROPLOAD_LOAD_THREADS, default 0 (the loads on the main thread). Off by
 * default because on the 2-core machine it was measured on, busy, threads cost CPU (each isolate loads
 * and compiles the modules again) and memory and ended no sooner (README, Performance).
 */
export function loadThreadsWanted(env: Record<string, string | undefined>): number {
  const raw = env.DROPLOAD_LOAD_THREADS;
  if (raw === undefined || raw === '') return 0;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    throw new ConfigError(`DROPLOAD_LOAD_THREADS must be a whole number (0: none), got "${raw}"`);
  }
  return n;
}

/**
 * Loads at once when none are asked for: one per core the machine offers, within the connection budget.
 * The loads share the main thread unless load threads are asked for, so more at once than cores only
 * holds more chunks in memory (each an 8 MiB chunk as bytes, text, rows and COPY text): `run` on the
 * 1,000,000-row bench file held 140 MB of Buffers and strings on its main thread during the loads at 8
 * against 40 MB at 2, and ended no later (README, Performance).
 */
export function defaultLoadConcurrency(budget: number, cores = availableParallelism()): number {
  return Math.max(1, Math.min(cores, budget));
}

/**
 * How `workers` concurrent loads spread over `wanted` threads within a connection budget: no more
 * threads than loads at once, none when the budget leaves no connection for one (the embedded database
 * has a single one).
 */
export function threadPlan(workers: number, budget: number, wanted: number): ThreadPlan {
  const threads = Math.max(0, Math.min(workers, wanted, budget - MAIN_CONNECTIONS));
  if (threads === 0) return { threads: 0, perThread: 0, main: budget };
  const perThread = Math.floor((budget - MAIN_CONNECTIONS) / threads);
  return { threads, perThread, main: budget - threads * perThread };
}

/** One worker thread and the invocations it is running. */
class LoadThread {
  readonly pending = new Map<number, Pending>();
  readonly worker: Worker;
  #stopped?: (value: undefined) => void;
  #exited = false;
  #error?: Error;

  constructor(entry: URL, options: LoadThreadsOptions, onExit: (t: LoadThread) => void) {
    this.worker = new Worker(entry, {
      workerData: options.setup,
      resourceLimits: options.resourceLimits ?? LAMBDA_HEAP,
    });
    // Read now: an exited worker's threadId is -1.
    const id = this.worker.threadId;
    this.worker.on('message', (m: LoadThreadMessage) => this.#receive(m));
    this.worker.on('error', (err) => {
      this.#error = err;
    });
    this.worker.on('exit', (code) => {
      this.#exited = true;
      const why = this.#error ? `: ${this.#error.message}` : '';
      const err = new Error(`load thread ${id} ended (exit code ${code})${why}`);
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
      this.#stopped?.(undefined);
      onExit(this);
    });
  }

  #receive(m: LoadThreadMessage): void {
    if ('stopped' in m) return void this.worker.terminate();
    const p = this.pending.get(m.id);
    this.pending.delete(m.id);
    if ('error' in m) p?.reject(new Error(m.error));
    else p?.resolve(m.response);
  }

  run(invocation: Invocation): ReturnType<SqsHandler> {
    return new Promise((resolve, reject) => {
      this.pending.set(invocation.id, { resolve, reject });
      this.worker.postMessage(invocation);
    });
  }

  /** Lets the thread close its pool, then ends it. */
  stop(): Promise<void> {
    if (this.#exited) return Promise.resolve();
    const exited = new Promise<undefined>((r) => {
      this.#stopped = r;
    });
    this.worker.postMessage('stop');
    return exited.then(() => {});
  }
}

/**
 * The load function's "containers" locally: `count` worker threads, each with its own dependencies, so
 * loads can use the machine's other cores while the main thread runs the event sources, split and runner.
 * A thread that crashes (an uncaught error, out of heap) fails what it was running and is replaced.
 */
export function startLoadThreads(options: LoadThreadsOptions): LoadThreads {
  // The sources (.ts) in this repository, the built package's .js: the entry sits beside this module.
  const ext = path.extname(fileURLToPath(import.meta.url));
  const entry = options.entry ?? new URL(`./load-worker${ext}`, import.meta.url);
  let stopping = false;
  const threads: LoadThread[] = [];
  const onExit = (dead: LoadThread) => {
    const i = threads.indexOf(dead);
    if (i < 0 || stopping) return;
    threads[i] = new LoadThread(entry, options, onExit);
  };
  for (let i = 0; i < options.count; i++) threads.push(new LoadThread(entry, options, onExit));
  let nextId = 0;
  return {
    handler: (event, context) => {
      const idle = threads.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
      return idle.run({
        id: nextId++,
        event,
        functionName: context.functionName,
        remainingMs: context.getRemainingTimeInMillis(),
      });
    },
    stop: async () => {
      stopping = true;
      await Promise.all(threads.map((t) => t.stop()));
    },
  };
}
