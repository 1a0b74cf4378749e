import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError, errorMessage, RequestRefusedError, UsageError } from '../shared/core/errors.ts';
import type { QueueName } from '../shared/core/topology.ts';
import { CONSOLE_QUEUES, type ConsoleDeps, overview, rejectsOfKey, replayQueue } from './console-api.ts';

/** The console listens on loopback only: the page can move messages, and checks no password. */
export const CONSOLE_HOST = '127.0.0.1';

/**
 * The page's files, shipped in the package as they are (no build step): resolved through the
 * package's `imports` map, so the sources and the built CLI in dist/ find the same folder.
 */
const PAGE: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/console.js': { file: 'console.js', type: 'text/javascript; charset=utf-8' },
  '/console.css': { file: 'console.css', type: 'text/css; charset=utf-8' },
};

/**
 * What every answer carries: no inline script or style runs (a key or a line that got into the markup
 * could not execute), no other site frames the page, nothing is cached (the ledger moves).
 */
const HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

function send(res: ServerResponse, status: number, type: string, body: string | Buffer): void {
  res.writeHead(status, { ...HEADERS, 'content-type': type });
  res.end(body);
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, 'application/json; charset=utf-8', JSON.stringify(value));
}

/**
 * The Host the page must have been loaded from: the console's own address. A DNS-rebinding page (a
 * foreign name that resolves to 127.0.0.1) sends its own name and is refused, reads included.
 */
function checkHost(req: IncomingMessage, port: number): void {
  const allowed = [`${CONSOLE_HOST}:${port}`, `localhost:${port}`];
  if (!allowed.includes(req.headers.host ?? '')) {
    throw new RequestRefusedError(403, `this console answers only at http://${CONSOLE_HOST}:${port}/`);
  }
}

/**
 * A request that changes something comes from the console's own page: the browser's Origin is the
 * console's, and the body is JSON (which another site cannot send without a preflight this server
 * never grants).
 */
function checkSameOrigin(req: IncomingMessage): void {
  if (req.headers.origin !== `http://${req.headers.host}`) {
    throw new RequestRefusedError(
      403,
      'refused: a request that changes something must come from the console page',
    );
  }
  if (!(req.headers['content-type'] ?? '').startsWith('application/json')) {
    throw new RequestRefusedError(415, 'expected a JSON body');
  }
}

const BODY_MAX = 4096;

async function jsonBody(req: IncomingMessage): Promise<unknown> {
  let text = '';
  for await (const part of req) {
    text += String(part);
    if (text.length > BODY_MAX) throw new RequestRefusedError(413, 'request body too large');
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new RequestRefusedError(400, 'expected a JSON body', { cause: err });
  }
}

function queueOf(body: unknown): QueueName {
  const queue = (body as { queue?: unknown } | null)?.queue;
  if (!CONSOLE_QUEUES.includes(queue as QueueName)) {
    throw new RequestRefusedError(400, `queue must be one of ${CONSOLE_QUEUES.join(', ')}`);
  }
  return queue as QueueName;
}

async function servePage(res: ServerResponse, path: string): Promise<boolean> {
  const asset = PAGE[path];
  if (!asset) return false;
  const body = await readFile(new URL(import.meta.resolve(`#console/${asset.file}`)));
  send(res, 200, asset.type, body);
  return true;
}

async function route(deps: ConsoleDeps, options: ConsoleOptions, req: IncomingMessage, res: ServerResponse) {
  const url = new URL(req.url ?? '/', `http://${CONSOLE_HOST}`);
  if (req.method === 'GET' || req.method === 'HEAD') {
    if (await servePage(res, url.pathname)) return;
    if (url.pathname === '/api/overview') return sendJson(res, 200, await overview(deps, options.limit));
    if (url.pathname === '/api/rejects') {
      const key = url.searchParams.get('key');
      if (!key) throw new RequestRefusedError(400, 'key is required');
      return sendJson(res, 200, await rejectsOfKey(deps, key, url.searchParams.get('all') === '1'));
    }
    throw new RequestRefusedError(404, `no such page: ${url.pathname}`);
  }
  if (req.method === 'POST' && url.pathname === '/api/replay') {
    checkSameOrigin(req);
    return sendJson(res, 200, await replayQueue(deps, queueOf(await jsonBody(req))));
  }
  throw new RequestRefusedError(405, `${req.method} is not allowed here`);
}

/** A known refusal keeps its status; an unknown key (a ConfigError from the ledger) is a 404; the rest a 500. */
function statusOf(err: unknown): number {
  if (err instanceof RequestRefusedError) return err.status;
  if (err instanceof ConfigError || err instanceof UsageError) return 404;
  return 500;
}

export interface ConsoleOptions {
  port: number;
  /** The newest files to show, as `status --limit`. */
  limit: number;
}

/** Starts the console's server on loopback; resolves once it listens (rejects with EADDRINUSE when the port is taken). */
export async function startConsole(deps: ConsoleDeps, options: ConsoleOptions): Promise<Server> {
  const server = createServer((req, res) => {
    const port = (server.address() as AddressInfo).port;
    Promise.resolve()
      .then(() => checkHost(req, port))
      .then(() => route(deps, options, req, res))
      .catch((err: unknown) => {
        const status = statusOf(err);
        if (status === 500) deps.logger.error('console request failed', { error: errorMessage(err) });
        // A refusal is said as it is; anything else with its error's name, as the CLI prints it.
        const message = status === 500 ? errorMessage(err) : (err as Error).message;
        if (!res.headersSent) sendJson(res, status, { error: message });
        else res.end();
      });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, CONSOLE_HOST, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return server;
}
