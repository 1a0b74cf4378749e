import { parentPort } from 'node:worker_threads';
import type { Invocation, LoadThreadMessage } from '../../local/load-worker.ts';

// A load thread for load-threads.test.ts that fails as a thread can: the first record's body says how.
// `exit`: the thread dies mid-invocation (as on out-of-heap); `throw`: the handler throws; else it succeeds.

const port = parentPort;
if (!port) throw new Error('test/support/faulty-load-worker.ts runs as a worker thread');
const post = (m: LoadThreadMessage) => port.postMessage(m);
port.on('message', (m: Invocation | 'stop') => {
  if (m === 'stop') {
    post({ stopped: true });
    return;
  }
  const body = m.event.Records[0]?.body;
  if (body === 'exit') process.exit(7);
  if (body === 'throw') post({ id: m.id, error: 'the handler failed' });
  else
    post({ id: m.id, response: { batchItemFailures: [{ itemIdentifier: `${body} in ${m.functionName}` }] } });
});
