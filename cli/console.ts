import type { Command } from 'commander';
import { StderrLogger } from '../local/stderr-logger.ts';
import type { QueueName } from '../shared/core/topology.ts';
import { awsClients } from '../shared/runtime/environment.ts';
import type { ConsoleDeps } from './console-api.ts';
import { CONSOLE_HOST, startConsole } from './console-server.ts';
import { openLedger, type QueueUrls, resolveQueues } from './ops-resources.ts';
import { positive } from './options.ts';

type Globals = () => { verbose?: boolean };

/** The console's default port: beside `dev`'s 4566/4567, clear of common development servers. */
export const CONSOLE_PORT = 4630;

/** A queue's URLs once found: the stack's outputs do not move while the console runs. */
function queueFinder(sqs: ConsoleDeps['sqs']): ConsoleDeps['queues'] {
  const found = new Map<QueueName, QueueUrls>();
  return async (queue) => {
    const known = found.get(queue);
    if (known) return known;
    const urls = await resolveQueues(sqs, queue);
    found.set(queue, urls);
    return urls;
  };
}

/** `dropload console`: the operator commands' views and replay as a page on loopback. */
export function registerConsole(program: Command, globals: Globals): void {
  program
    .command('console')
    .description(
      'a web page on 127.0.0.1: files with live progress, rows/s, rejects, dead letters (with replay), waiting rows',
    )
    .option('-p, --port <port>', 'port on 127.0.0.1', positive, CONSOLE_PORT)
    .option('-n, --limit <n>', 'newest files to show', positive, 50)
    .action(async (opts: { port: number; limit: number }) => {
      const db = openLedger('console');
      const { sqs } = awsClients();
      const logger = new StderrLogger({
        serviceName: 'dropload',
        logLevel: globals().verbose ? 'INFO' : 'WARN',
      });
      try {
        const server = await startConsole(
          { db, sqs, logger, queues: queueFinder(sqs) },
          { port: opts.port, limit: opts.limit },
        );
        process.stdout.write(
          `dropload console: http://${CONSOLE_HOST}:${opts.port}/ (loopback only; Ctrl-C stops it)\n`,
        );
        await new Promise<void>((resolve) => {
          process.once('SIGINT', resolve);
          process.once('SIGTERM', resolve);
        });
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      } finally {
        await db.destroy();
      }
    });
}
