import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { GetQueueAttributesCommand, GetQueueUrlCommand, SQSClient } from '@aws-sdk/client-sqs';
import { type Kysely, sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import type { FileReport } from '../../cli/report.ts';
import { startEmbeddedEmulator } from '../../local/embedded-emulator.ts';
import { startLocalStack } from '../../local/local-stack.ts';
import { resolveConfig } from '../../shared/config/config.ts';
import { createDb, createPool } from '../../shared/ledger/connection.ts';
import type { Database } from '../../shared/ledger/schema.ts';
import devConfig, { DEV_ROWS_TABLE } from '../support/dev.config.ts';
import {
  childEnv,
  cli,
  DEV_BUCKET,
  devS3,
  dropInto,
  freePortPair,
  startDev,
  stopAllDevs,
  stopDev,
} from '../support/dev.ts';
import { resetDatabase } from '../support/pipeline.ts';

/**
 * `dropload dev` as an operator runs it, in a child process: it listens on loopback only, prints no
 * secret, and keeps its embedded state on disk, so kill -9 and a restart end with the file loaded
 * exactly once (issue 10, items 9 and 10). Run on Postgres (DATABASE_URL) and on the embedded PGlite.
 */

const CONFIG = 'test/support/dev.config.ts';
const NODE = path.resolve('node_modules/.bin/node');
const BUCKET = DEV_BUCKET;
const postgres = process.env.DATABASE_URL;

afterEach(stopAllDevs);

/**
 * What each restartable `dev` test starts from: its table empty (on Postgres), a state folder and a free
 * port pair of its own, `dev`'s arguments for them, and the database the CLI beside it reaches (`dev`'s
 * embedded one, on the port after, without Postgres).
 */
async function freshDev() {
  if (postgres) await resetDatabase([DEV_ROWS_TABLE]);
  const stateDir = await mkdtemp(path.join(tmpdir(), 'dropload-dev-'));
  const port = await freePortPair();
  const args = ['--port', String(port), '--state-dir', stateDir];
  return {
    stateDir,
    port,
    args,
    databaseUrl: postgres ?? `postgres://postgres@127.0.0.1:${port + 1}/postgres`,
  };
}

/** The addresses the sockets listening on `port` are bound to, as the kernel lists them. */
function listeningAddresses(port: number): string[] {
  const out: string[] = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const lines = readFileSync(file, 'utf8').trim().split('\n').slice(1);
    for (const line of lines) {
      const [, local = '', , state] = line.trim().split(/\s+/);
      const [address = '', portHex = ''] = local.split(':');
      if (state !== '0A' || Number.parseInt(portHex, 16) !== port) continue; // 0A: LISTEN
      out.push(address.length === 8 ? ipv4(address) : `ipv6 ${address}`);
    }
  }
  return out;
}

/** /proc/net/tcp writes an IPv4 address as one little-endian hex word: 0100007F is 127.0.0.1. */
const ipv4 = (hex: string) => [6, 4, 2, 0].map((i) => Number.parseInt(hex.slice(i, i + 2), 16)).join('.');

const portOf = (url: string) => Number(new URL(url).port);

describe('dropload dev: loopback only, no secrets printed', () => {
  it('the embedded S3/SQS emulator and Postgres listen on 127.0.0.1 only', async () => {
    const stack = await startLocalStack({
      config: resolveConfig(devConfig, CONFIG),
      env: { AWS_ENDPOINT_URL: undefined, DATABASE_URL: undefined },
    });
    try {
      expect(stack.embedded).toEqual({ emulator: true, database: true });
      expect(listeningAddresses(portOf(stack.endpoint))).toEqual(['127.0.0.1']);
      expect(listeningAddresses(portOf(stack.databaseUrl))).toEqual(['127.0.0.1']);
    } finally {
      await stack.stop();
    }
  });

  it("prints no password: a DATABASE_URL's is shown as ****", async () => {
    const secret = 'S3cr3t-pw';
    let url: URL;
    let stopEmbedded = async () => {};
    if (postgres) {
      await resetDatabase([DEV_ROWS_TABLE]);
      url = new URL(postgres);
    } else {
      // No Postgres here: a PGlite of the test's own stands in for "a database with a password".
      const { PGlite } = await import('@electric-sql/pglite');
      const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
      const db = await PGlite.create();
      const server = new PGLiteSocketServer({ db, port: 0, host: '127.0.0.1', maxConnections: 2 });
      await server.start();
      url = new URL(`postgres://postgres@${server.getServerConn()}/postgres`);
      stopEmbedded = async () => {
        await server.stop();
        await db.close();
      };
    }
    url.password = secret;
    const stateDir = await mkdtemp(path.join(tmpdir(), 'dropload-dev-'));
    try {
      const port = await freePortPair();
      const dev = startDev(CONFIG, ['--port', String(port), '--state-dir', stateDir], {
        DATABASE_URL: url.toString(),
        DROPLOAD_DB_POOL_MAX: '1',
      });
      await dev.waitFor('status --watch');
      await stopDev(dev, 'SIGTERM');
      expect(dev.output()).toContain(`postgres:****@${url.host}`);
      expect(dev.output()).not.toContain(secret);
    } finally {
      await stopEmbedded();
      await rm(stateDir, { recursive: true, force: true });
    }
  });
});

describe('dropload dev keeps its state: kill -9 mid-file, restart, the file ends exact', () => {
  it('resumes the unfinished file on restart; backfill --resume then finds it finished', {
    timeout: 300_000,
  }, async () => {
    const { stateDir, port, args, databaseUrl } = await freshDev();
    const endpoint = `http://127.0.0.1:${port}`;
    const env = { DATABASE_URL: postgres };
    const rows = 40_000;
    const lines = ['id,label'];
    for (let i = 1; i <= rows; i++) lines.push(`${i},row ${i} ${'x'.repeat(30)}`);
    const key = 'incoming/rows/big.csv';
    let db: Kysely<Database> | undefined;
    const ledger = () => {
      db ??= createDb(createPool({ connectionString: databaseUrl, poolMax: 1 }));
      return db;
    };
    const forget = async () => {
      await db?.destroy().catch(() => {});
      db = undefined;
    };
    const fileRow = () =>
      ledger()
        .selectFrom('dropload.file')
        .select([
          'state',
          'chunks_done',
          'chunk_count',
          'rows_read',
          'rows_inserted',
          'rows_rejected',
          'resumes',
        ])
        .where('key', '=', key)
        .executeTakeFirst();
    try {
      const first = startDev(CONFIG, args, env);
      await first.waitFor('status --watch');
      const clients = { endpoint, region: 'us-east-1', forcePathStyle: true };
      const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
      const s3 = new S3Client({ ...clients, credentials });
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: `${lines.join('\n')}\n` }));
      // Stop it the hard way once some chunks, not all, have loaded.
      let before: Awaited<ReturnType<typeof fileRow>>;
      for (;;) {
        before = await fileRow();
        if (before && before.chunks_done > 0) break;
        await new Promise((r) => setTimeout(r, 25));
      }
      await stopDev(first, 'SIGKILL');
      await forget();
      expect(before?.state).toBe('loading');
      expect(before?.chunks_done).toBeLessThan(before?.chunk_count ?? 0);

      const second = startDev(CONFIG, args, env);
      await second.waitFor(`resumed s3://${BUCKET}/${key}`);
      let after: Awaited<ReturnType<typeof fileRow>>;
      for (let i = 0; ; i++) {
        after = await fileRow().catch(() => undefined);
        if (after?.state === 'loaded' || i > 2400) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(after).toEqual({
        state: 'loaded',
        chunks_done: before?.chunk_count,
        chunk_count: before?.chunk_count,
        rows_read: rows,
        rows_inserted: rows,
        rows_rejected: 0,
        // The restart's scan found it loading: one interruption, counted once.
        resumes: 1,
      });
      // `status` says so, with when and the seconds the file sat idle (the downtime) apart from its work.
      const status = await cli(CONFIG, ['status'], { DATABASE_URL: databaseUrl });
      expect(status.stdout.split('\n').filter((l) => l.includes('resumed'))).toEqual([
        expect.stringMatching(
          new RegExp(
            `^${key}: resumed 1× after an interruption, at \\d\\d:\\d\\d:\\d\\d UTC; of its \\d+\\.\\d s, \\d+\\.\\d were idle before it and \\d+\\.\\d active; nothing to do: no row is lost or loaded twice$`,
          ),
        ),
      ]);
      const table = await sql<{ n: number; sum: string }>`
          select count(*)::int as n, sum(id)::text as sum from ${sql.table(DEV_ROWS_TABLE)}`.execute(
        ledger(),
      );
      expect(table.rows[0]).toEqual({ n: rows, sum: String((rows * (rows + 1)) / 2) });
      const chunkStates = await sql<{ state: string; n: number }>`
        select c.state, count(*)::int as n from dropload.chunk c join dropload.file f on f.id = c.file_id
        where f.key = ${key} group by c.state`.execute(ledger());
      expect(chunkStates.rows).toEqual([{ state: 'loaded', n: before?.chunk_count }]);
      const sqs = new SQSClient({ ...clients, credentials });
      const dlq = await sqs.send(new GetQueueUrlCommand({ QueueName: 'dropload-chunks-dlq' }));
      const depth = await sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: dlq.QueueUrl,
          AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
        }),
      );
      expect(depth.Attributes).toEqual({
        ApproximateNumberOfMessages: '0',
        ApproximateNumberOfMessagesNotVisible: '0',
      });

      // The README's recovery command, against the restarted stack: the object and its ledger entry
      // are both there, and the file is finished, so nothing is enqueued.
      const backfilled = await promisify(execFile)(
        NODE,
        ['cli/dropload.ts', '--config', CONFIG, 'backfill', '--resume'],
        {
          env: childEnv({
            AWS_ENDPOINT_URL: endpoint,
            AWS_ACCESS_KEY_ID: 'test',
            AWS_SECRET_ACCESS_KEY: 'test',
            AWS_REGION: 'us-east-1',
            DATABASE_URL: databaseUrl,
          }),
        },
      );
      expect(backfilled.stdout).toMatch(new RegExp(`^skipped \\(seen\\)\\s+s3://${BUCKET}/${key} `, 'm'));
      await forget();
      await stopDev(second, 'SIGTERM');
      expect(await second.exited).toBe(0);
    } finally {
      await forget();
      await rm(stateDir, { recursive: true, force: true });
    }
  });
});

describe('dropload dev started in the background with npx, then kill -9 (new-user trial, F3)', () => {
  it("$! is npm's pid, which leaves dev running; the pid dev prints, also in its state folder, is the one to kill", {
    timeout: 180_000,
  }, async () => {
    const stateDir = await mkdtemp(path.join(tmpdir(), 'dropload-dev-'));
    const log = `${stateDir}.log`;
    const port = await freePortPair();
    const gone = (pid: number) => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    };
    let devPid = 0;
    try {
      // As README's State paragraph shows it, in a shell: `npx dropload dev &`, then `$!`.
      const started = await promisify(execFile)(
        'sh',
        [
          '-c',
          `npx dropload --config ${CONFIG} dev --port ${port} --state-dir ${stateDir} > ${log} 2>&1 & echo $!`,
        ],
        { env: childEnv({ DATABASE_URL: postgres, DROPLOAD_DB_POOL_MAX: '1' }) },
      );
      const npmPid = Number(started.stdout.trim());
      let banner = '';
      for (let i = 0; !banner.includes('status --watch'); i++) {
        if (i > 2400) throw new Error(`dev printed no banner:\n${banner}`);
        await new Promise((r) => setTimeout(r, 50));
        banner = await readFile(log, 'utf8').catch(() => '');
      }
      devPid = Number(/^ {2}pid {8}(\d+) /m.exec(banner)?.[1]);
      expect(banner).toContain(
        `  pid        ${devPid} (this process, the one to stop or kill; also in ${path.join(stateDir, 'dropload.pid')})`,
      );
      expect(Number((await readFile(path.join(stateDir, 'dropload.pid'), 'utf8')).trim())).toBe(devPid);
      expect(devPid).not.toBe(npmPid);
      // The trial's kill -9 $!: npm dies, dev (its grandchild) keeps the emulator's port.
      process.kill(npmPid, 'SIGKILL');
      await new Promise((r) => setTimeout(r, 1000));
      expect([gone(devPid), listeningAddresses(port)]).toEqual([false, ['127.0.0.1']]);
      // README's: kill -9 $(cat STATE_DIR/dropload.pid) stops dev itself, and frees its ports.
      process.kill(devPid, 'SIGKILL');
      for (let i = 0; i < 200 && !(gone(devPid) && listeningAddresses(port).length === 0); i++)
        await new Promise((r) => setTimeout(r, 50));
      expect([gone(devPid), listeningAddresses(port), listeningAddresses(port + 1)]).toEqual([true, [], []]);
    } finally {
      if (devPid > 0 && !gone(devPid)) process.kill(devPid, 'SIGKILL');
      await rm(stateDir, { recursive: true, force: true });
      await rm(log, { force: true });
    }
  });
});

describe('dropload dev: a file outside every dataset prefix', () => {
  it('is printed, recorded skipped with the prefixes that exist, final for `wait` (exit 1), once per version', {
    timeout: 300_000,
  }, async () => {
    const { stateDir, port, args, databaseUrl } = await freshDev();
    const key = 'scratch/x.csv';
    const reason = `no dataset's prefix matches "${key}"; prefixes: incoming/rows/`;
    try {
      const dev = startDev(CONFIG, args, {
        DATABASE_URL: postgres,
      });
      await dev.waitFor('status --watch');
      const s3 = devS3(`http://127.0.0.1:${port}`);
      await dropInto(s3, key, 'id,label\n1,a\n');
      await dev.waitFor(`skipped s3://${BUCKET}/${key}: ${reason}\n`);

      const waited = await cli(CONFIG, ['wait', key, '--json', '--timeout', '60'], {
        DATABASE_URL: databaseUrl,
      });
      const files = (JSON.parse(waited.stdout) as { files: FileReport[] }).files;
      expect([waited.code, files.map((f) => [f.key, f.dataset, f.state, f.error, f.rows.read])]).toEqual([
        1,
        [[key, null, 'skipped', reason, 0]],
      ]);
      const status = await cli(CONFIG, ['status'], { DATABASE_URL: databaseUrl });
      expect(status.stdout).toMatch(new RegExp(`^${key} +- +skipped `, 'm'));
      expect(status.stdout).toContain(`${key}: skipped: ${reason}`);
      const receipt = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: `reports/${key}.json` }));
      expect(JSON.parse((await receipt.Body?.transformToString()) ?? '{}')).toMatchObject({
        file: key,
        state: 'skipped',
        error: reason,
      });

      // The same bytes again are the same version: nothing new. A file after it shows the watch went past.
      await dropInto(s3, key, 'id,label\n1,a\n');
      await dropInto(s3, 'incoming/rows/after.csv', 'id,label\n1,a\n');
      const after = await cli(CONFIG, ['wait', 'incoming/rows/after.csv', '--timeout', '60'], {
        DATABASE_URL: databaseUrl,
      });
      expect(after.code).toBe(0);
      const { stdout: all } = await cli(CONFIG, ['status', '--json'], { DATABASE_URL: databaseUrl });
      const keys = (JSON.parse(all) as { files: FileReport[] }).files.map((f) => [f.key, f.state]).sort();
      // No receipt of a receipt: reports/ is dropload's own, never announced.
      expect(keys).toEqual([
        ['incoming/rows/after.csv', 'loaded'],
        [key, 'skipped'],
      ]);
      expect(dev.output().split(`skipped s3://${BUCKET}/${key}`)).toHaveLength(2);
      await stopDev(dev, 'SIGTERM');
      expect(await dev.exited).toBe(0);
    } finally {
      await rm(stateDir, { recursive: true, force: true });
    }
  });
});

describe('dropload dev: a file that arrived while it was down (review h7 item 3)', () => {
  it('is announced by the start-up scan as received, not resumed: the ledger never saw it', {
    timeout: 300_000,
  }, async () => {
    const { stateDir, port, args, databaseUrl } = await freshDev();
    const key = 'incoming/rows/while-down.csv';
    try {
      // The stack alone, on dev's state: an object lands in its bucket with no watch running.
      const stack = await startLocalStack({
        config: resolveConfig(devConfig, CONFIG),
        port,
        databasePort: port + 1,
        stateDir,
        env: { AWS_ENDPOINT_URL: undefined, DATABASE_URL: postgres },
      });
      await stack.s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: 'id,label\n1,a\n' }));
      await stack.stop();

      const dev = startDev(CONFIG, args, {
        DATABASE_URL: postgres,
      });
      await dev.waitFor(`received s3://${BUCKET}/${key}\n`);
      const waited = await cli(CONFIG, ['wait', key, '--timeout', '60'], { DATABASE_URL: databaseUrl });
      expect(waited.code).toBe(0);
      expect(dev.output()).not.toContain('resumed');
      await stopDev(dev, 'SIGTERM');
      expect(await dev.exited).toBe(0);
    } finally {
      await rm(stateDir, { recursive: true, force: true });
    }
  });
});

describe('dropload dev: its S3/SQS endpoint goes away for a while (new-user trial, h9 item 3)', () => {
  it('prints in words what failed and what it does next, no JSON log line, and loads once the endpoint is back', {
    timeout: 300_000,
  }, async () => {
    const { stateDir, args, databaseUrl } = await freshDev();
    const emulatorPort = await freePortPair();
    const emulatorState = path.join(stateDir, 'endpoint');
    let emulator = await startEmbeddedEmulator({ port: emulatorPort, stateDir: emulatorState });
    try {
      const dev = startDev(CONFIG, args, {
        DATABASE_URL: postgres,
        AWS_ENDPOINT_URL: emulator.endpoint,
        AWS_ACCESS_KEY_ID: 'test',
        AWS_SECRET_ACCESS_KEY: 'test',
        AWS_REGION: 'us-east-1',
      });
      await dev.waitFor('status --watch');
      await emulator.stop();
      await dev.waitFor('could not receive from the chunks queue');
      await dev.waitFor(`could not list s3://${BUCKET} for new files`);
      emulator = await startEmbeddedEmulator({ port: emulatorPort, stateDir: emulatorState });
      const key = 'incoming/rows/after-outage.csv';
      await dropInto(devS3(emulator.endpoint), key, 'id,label\n1,a\n2,b\n');
      await dev.waitFor(`received s3://${BUCKET}/${key}\n`);
      const waited = await cli(CONFIG, ['wait', key, '--timeout', '60'], { DATABASE_URL: databaseUrl });
      expect(waited.code).toBe(0);
      const told = dev
        .output()
        .split('\n')
        .filter((l) => l.includes('could not') || l.includes('"level"'));
      expect(told.length).toBeGreaterThan(0);
      for (const line of told)
        expect(line).toMatch(
          new RegExp(
            `^(could not receive from the (ingest|chunks) queue \\(\\w+: .+\\): receiving again in 0.5 s; its messages stay queued|could not list s3://${BUCKET} for new files \\(\\w+: .+\\): listing again in 0.5 s|could not look for the files the last run left unfinished \\(\\w+: .+\\): the bucket listing announces each object instead)$`,
          ),
        );
      await stopDev(dev, 'SIGTERM');
      expect(await dev.exited).toBe(0);
    } finally {
      await emulator.stop();
      await rm(stateDir, { recursive: true, force: true });
    }
  });
});
