import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

/** The only address the embedded emulator and database listen on. */
export const LOOPBACK = '127.0.0.1';

export interface EmbeddedEmulator {
  endpoint: string;
  /** The listening socket's address, as the operating system has it. */
  address: AddressInfo;
  stop(): Promise<void>;
}

export interface EmbeddedEmulatorOptions {
  /** 0 picks a free port. */
  port: number;
  /** Where queues, messages (SQLite) and objects (files) are kept across restarts; unset: in memory. */
  stateDir?: string;
}

/** Answers a request before fauxqs sees it, or says it did not (false): how linked files are served. */
export type RequestFilter = (req: http.IncomingMessage, res: http.ServerResponse) => boolean;

/**
 * fauxqs with its HTTP server on loopback only. fauxqs 2.4 ignores its `host` option when it listens
 * (`startFauxqs` calls `app.listen({ port, host: "0.0.0.0" })`), which would put an S3/SQS endpoint
 * that checks no credentials on every interface. Its server is made synchronously inside
 * `startFauxqs`, before that function's first `await` (buildApp → Fastify → `http.createServer`), so
 * for exactly that synchronous stretch `http.createServer` is wrapped: the server it makes listens on
 * loopback whatever host it is asked for. Nothing else can run in between, so no other server is
 * touched. If a later fauxqs makes its server some other way, the check after the start finds it and
 * the emulator is stopped instead of exposed. (fauxqs' exported `buildApp` cannot replace this: the
 * stores and persistence `startFauxqs` wires into it are not exported.) The same wrapper puts `filter`
 * (linked files, linked-objects.ts) in front of fauxqs's request handler.
 */
export async function startEmbeddedEmulator(
  options: EmbeddedEmulatorOptions,
  filter?: RequestFilter,
): Promise<EmbeddedEmulator> {
  const { startFauxqs } = await import('fauxqs');
  const created: http.Server[] = [];
  const factory = http as { createServer: typeof http.createServer };
  const createServer = factory.createServer;
  factory.createServer = ((...args: Parameters<typeof http.createServer>) => {
    const server = createServer(...(filter ? filtered(args, filter) : args));
    created.push(server);
    const listen = server.listen.bind(server) as (...a: unknown[]) => http.Server;
    server.listen = ((...a: unknown[]) => listen(...onLoopback(a))) as typeof server.listen;
    return server;
  }) as typeof http.createServer;
  let starting: ReturnType<typeof startFauxqs>;
  try {
    starting = startFauxqs({
      port: options.port,
      host: LOOPBACK,
      logger: false,
      ...(options.stateDir
        ? {
            dataDir: path.join(options.stateDir, 'queues'),
            // Object bodies as files: SQLite blobs would bloat with large files.
            s3StorageDir: path.join(options.stateDir, 'objects'),
          }
        : {}),
    });
  } finally {
    factory.createServer = createServer;
  }
  const server = await starting;
  const address = created.length === 1 ? created[0]?.address() : undefined;
  if (!address || typeof address === 'string' || address.address !== LOOPBACK) {
    await server.stop();
    throw new Error(
      `the embedded S3/SQS emulator did not listen on ${LOOPBACK} only (found ${JSON.stringify(address ?? created.length)}): not running it; set AWS_ENDPOINT_URL to use another endpoint`,
    );
  }
  return { endpoint: `http://${LOOPBACK}:${address.port}`, address, stop: () => server.stop() };
}

/** `server.listen` arguments with the host made loopback: the options form Fastify uses, or (port, host, …). */
function onLoopback(args: unknown[]): unknown[] {
  const out = [...args];
  const [first, second] = args;
  if (typeof first === 'object' && first !== null) out[0] = { ...first, host: LOOPBACK };
  else if (typeof second === 'string') out[1] = LOOPBACK;
  else if (typeof first === 'number') out.splice(1, 0, LOOPBACK);
  return out;
}

/** createServer's arguments with its request handler behind the filter. */
function filtered(args: Parameters<typeof http.createServer>, filter: RequestFilter) {
  // Without a handler in the arguments the filter would be skipped in silence: linked keys would 404.
  if (!args.some((a) => typeof a === 'function'))
    throw new Error('fauxqs made its server without a request handler');
  return args.map((a) =>
    typeof a === 'function'
      ? (req: http.IncomingMessage, res: http.ServerResponse) => {
          if (!filter(req, res)) (a as http.RequestListener)(req, res);
        }
      : a,
  ) as Parameters<typeof http.createServer>;
}
