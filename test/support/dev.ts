import { type ChildProcess, execFile, spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';

/** `dropload dev` and the CLI beside it, as an operator runs them: child processes on this repository's Node. */

const NODE = path.resolve('node_modules/.bin/node');
export const DEV_BUCKET = 'dropload-local';

/** The environment a child gets: this one, minus the endpoint, with `env` applied (undefined removes). */
export function childEnv(env: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries({ ...process.env, AWS_ENDPOINT_URL: undefined, ...env })) {
    if (v !== undefined) out[k] = v;
  }
  return out;
}

export interface Dev {
  child: ChildProcess;
  output(): string;
  /** Resolves once the output contains `text` (fails after `ms`, or if `dev` exits first). */
  waitFor(text: string, ms?: number): Promise<void>;
  exited: Promise<number | null>;
}

const running: Dev[] = [];

/** Starts `dropload --config CONFIG dev ARGS…`, its stdout and stderr gathered into one text. */
export function startDev(config: string, args: string[], env: Record<string, string | undefined>): Dev {
  const child = spawn(NODE, ['cli/dropload.ts', '--config', config, 'dev', ...args], {
    env: childEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let text = '';
  child.stdout?.on('data', (d: Buffer) => {
    text += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    text += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const waitFor = async (wanted: string, ms = 120_000) => {
    const deadline = Date.now() + ms;
    while (!text.includes(wanted)) {
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error(`dev exited before printing "${wanted}":\n${text}`);
      if (Date.now() > deadline) throw new Error(`dev did not print "${wanted}" in ${ms} ms:\n${text}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const dev = { child, output: () => text, waitFor, exited };
  running.push(dev);
  return dev;
}

export async function stopDev(dev: Dev, signal: NodeJS.Signals): Promise<void> {
  if (dev.child.exitCode === null && dev.child.signalCode === null) dev.child.kill(signal);
  await dev.exited;
}

/** Kills every `dev` a test left running (an afterEach). */
export async function stopAllDevs(): Promise<void> {
  for (const dev of running.splice(0)) await stopDev(dev, 'SIGKILL');
}

/** A port p with p + 1 free too (`dev` puts its database on the next port). */
export async function freePortPair(): Promise<number> {
  const tryListen = (port: number) =>
    new Promise<number | undefined>((resolve) => {
      const server = net.createServer();
      server.once('error', () => resolve(undefined));
      server.listen(port, '127.0.0.1', () => {
        const bound = (server.address() as net.AddressInfo).port;
        server.close(() => resolve(bound));
      });
    });
  for (let i = 0; i < 50; i++) {
    const port = await tryListen(0);
    if (port !== undefined && port < 65535 && (await tryListen(port + 1)) !== undefined) return port;
  }
  throw new Error('no two free ports in a row');
}

/** The S3 client an operator points at `dev`'s emulator (it checks no credentials). */
export function devS3(endpoint: string): S3Client {
  return new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
}

/** Drops `body` into `dev`'s bucket under `key`, as `aws s3 cp` would. */
export async function dropInto(s3: S3Client, key: string, body: string): Promise<void> {
  await s3.send(new PutObjectCommand({ Bucket: DEV_BUCKET, Key: key, Body: body }));
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** `dropload --config CONFIG ARGS…` in a child process: its exit code and output. */
export function cli(
  config: string,
  args: string[],
  env: Record<string, string | undefined>,
): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      NODE,
      ['cli/dropload.ts', '--config', config, ...args],
      { env: childEnv(env) },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}
