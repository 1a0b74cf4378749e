import module from 'node:module';
import { parentPort, workerData } from 'node:worker_threads';
import { BlockProfiler } from './block-profiler.ts';
import { Columns } from './columns.ts';
import type { FileProfile } from './file-profile.ts';
import type { ThreadEvent, ThreadReply, ThreadSetup } from './profile-threads.ts';

// A profiling thread (see profile-threads.ts): parses every block the main thread posts, in order, and
// classifies the columns it owns.

const port = parentPort;
if (!port) throw new Error('cli/init/profile-worker.ts runs as a worker thread (profileOnThreads)');
// The main thread's compile cache (cli/bin.js) is not a worker's: enabled here, before its modules load.
module.enableCompileCache?.();

const setup = workerData as ThreadSetup;
const profile: FileProfile = {
  path: '',
  paths: [],
  base: '',
  format: setup.format,
  delimiter: setup.delimiter,
  quote: setup.quote,
  gzip: false,
  rows: 0,
  columns: [],
  pairs: [],
  misfits: [],
  misfitCount: 0,
};
let keep: Record<string, boolean> = {};
let snake: Record<string, string> = {};
const columns = new Columns(
  profile,
  (name) => snake[name] ?? name,
  (name) => keep[name] ?? true,
);
const profiler = new BlockProfiler(columns, { owns: [], pairs: setup.index === 0 });
let blocks = 0;

const post = (m: ThreadReply) => port.postMessage(m);

port.on('message', (m: ThreadEvent) => {
  if (m.kind === 'file') profiler.startFile(m.name);
  else if (m.kind === 'header') {
    ({ keep, snake } = m);
    profiler.share = { owns: m.owners.map((o) => o === setup.index), pairs: setup.index === 0 };
    profiler.take(m);
  } else if (m.kind === 'end') {
    // The distinct sets' typed arrays are moved to the main thread, not copied (tens of MB on a big file).
    port.postMessage({ result: result() } satisfies ThreadReply, buffers());
    port.close();
  } else {
    profiler.take(m);
    if (m.kind === 'records') post({ done: ++blocks });
  }
});

const owned = () => profile.columns.filter((_, i) => profiler.share.owns?.[i] === true);

function buffers(): ArrayBuffer[] {
  return [
    ...owned().flatMap((c) => c.distinct?.buffers() ?? []),
    ...profile.pairs.flatMap((p) => p.seen?.buffers() ?? []),
  ];
}

function result() {
  return {
    columns: owned().map((c) => c.state()),
    rows: profile.rows,
    misfits: profile.misfits,
    misfitCount: profile.misfitCount,
    ...(profile.quoteMisfit ? { quoteMisfit: profile.quoteMisfit } : {}),
    pairs: profile.pairs.map((p) => p.state()),
  };
}
