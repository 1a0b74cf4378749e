import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FileReport } from '../../cli/report.ts';
import { insertRejects } from '../../shared/ledger/ledger.ts';
import type { Database } from '../../shared/ledger/schema.ts';
import { newestFileByKey } from '../../shared/ops/rejects.ts';
import { startTestPipeline, type TestPipeline } from '../support/pipeline.ts';
import waitingConfig, { NW_TABLES } from '../support/waiting.config.ts';

/**
 * The CLI at its edges (issue 15): errors as one line with the fix and an exit code by class, a reader
 * that closes the pipe, long texts capped in the ledger and the table, `rejects` on a failed file, and
 * `wait`'s exit codes. Each command runs in a child process against the test pipeline's database.
 */

const NODE = path.resolve('node_modules/.bin/node');

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

let p: TestPipeline;
let db: Kysely<Database>;

beforeAll(async () => {
  p = await startTestPipeline(waitingConfig, NW_TABLES);
  db = p.deps.db;
});
afterAll(async () => {
  await p?.stop();
});

function cli(args: string[], env: Record<string, string | undefined> = {}): Promise<Ran> {
  const merged: NodeJS.ProcessEnv = {};
  const all = { ...process.env, AWS_ENDPOINT_URL: undefined, DATABASE_URL: p.stack.databaseUrl, ...env };
  for (const [k, v] of Object.entries(all)) if (v !== undefined) merged[k] = v;
  return new Promise((resolve) => {
    execFile(
      NODE,
      ['cli/dropload.ts', ...args],
      { env: merged, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr }),
    );
  });
}

const regionsWithShortNames = (n: number) =>
  `region_id,name\n${Array.from({ length: n }, (_, i) => `${i + 1},x`).join('\n')}\n`;

describe('errors end in one line and an exit code by class', () => {
  it('a reader that closes the pipe early ends the command quietly, exit 0', async () => {
    const key = 'incoming/regions/many-bad.csv';
    const report = await p.load(key, regionsWithShortNames(5000));
    expect(report.reports[0]?.rows.rejected).toBe(5000);
    const child = spawn(NODE, ['cli/dropload.ts', 'rejects', key], {
      env: { ...process.env, DATABASE_URL: p.stack.databaseUrl },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    // Like `| head -1`: read the first line, then close the pipe while the command still writes.
    child.stdout.once('data', () => child.stdout.destroy());
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    expect([code, stderr]).toEqual([0, '']);
  });

  it('a database never migrated: one line naming `npx dropload migrate`, exit 1', async () => {
    // The ledger out of sight, as in a database dropload never migrated.
    await sql`alter schema dropload rename to dropload_hidden`.execute(db);
    let ran: Ran;
    try {
      ran = await cli(['status']);
    } finally {
      await sql`alter schema dropload_hidden rename to dropload`.execute(db);
    }
    expect(ran).toEqual({
      code: 1,
      stdout: '',
      stderr: 'dropload: the ledger is not set up in this database: run `npx dropload migrate` first\n',
    });
  });

  it('a database nothing answers at: one line naming the address and DATABASE_URL, exit 1', async () => {
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as net.AddressInfo).port;
    // A port that was free a moment ago: nothing listens there now.
    await new Promise((resolve) => closed.close(resolve));
    const ran = await cli(['status'], { DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/x` });
    expect(ran).toEqual({
      code: 1,
      stdout: '',
      stderr: `dropload: nothing answers at 127.0.0.1:${port} (connection refused): start it, or check DATABASE_URL and AWS_ENDPOINT_URL\n`,
    });
  });

  it('dev on a port that is taken: one line naming --port, exit 1', async () => {
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const port = (holder.address() as net.AddressInfo).port;
    const stateDir = await mkdtemp(path.join(tmpdir(), 'dropload-busy-'));
    try {
      const ran = await cli(
        ['--config', 'test/support/dev.config.ts', 'dev', '--port', String(port), '--state-dir', stateDir],
        { DATABASE_URL: undefined },
      );
      expect(ran).toEqual({
        code: 1,
        stdout: '',
        stderr: `dropload: port ${port} is in use: pass \`--port N\` or stop what holds it\n`,
      });
    } finally {
      holder.close();
      await rm(stateDir, { recursive: true, force: true });
    }
  });

  it('dev with its database port (the next one) taken: one line naming that port, exit 1', async () => {
    // A free port whose next one this test holds: the emulator starts, the embedded database cannot.
    let holder: net.Server | undefined;
    let port = 0;
    for (let i = 0; i < 50 && !holder; i++) {
      const probe = net.createServer();
      await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
      port = (probe.address() as net.AddressInfo).port;
      await new Promise((resolve) => probe.close(resolve));
      const next = net.createServer();
      const held = await new Promise<boolean>((resolve) => {
        next.once('error', () => resolve(false));
        next.listen(port + 1, '127.0.0.1', () => resolve(true));
      });
      if (held) holder = next;
    }
    if (!holder) throw new Error('no free port with a free next one');
    const stateDir = await mkdtemp(path.join(tmpdir(), 'dropload-busy-'));
    try {
      const ran = await cli(
        ['--config', 'test/support/dev.config.ts', 'dev', '--port', String(port), '--state-dir', stateDir],
        { DATABASE_URL: undefined },
      );
      expect(ran).toEqual({
        code: 1,
        stdout: '',
        stderr: `dropload: port ${port + 1} is in use: pass \`--port N\` or stop what holds it\n`,
      });
    } finally {
      holder.close();
      await rm(stateDir, { recursive: true, force: true });
    }
  });

  it('bad usage exits 2 with commander’s message', async () => {
    const ran = await cli(['rejects']);
    expect(ran).toEqual({ code: 2, stdout: '', stderr: "error: missing required argument 'key'\n" });
    const noKeys = await cli(['wait']);
    expect(noKeys).toEqual({ code: 2, stdout: '', stderr: "error: missing required argument 'keys'\n" });
  });
});

describe('long texts are capped', () => {
  const longKey = `incoming/regions/${'k'.repeat(1003)}.csv`;
  const extra = Array.from({ length: 3000 }, (_, i) => `extra_${i}`);

  it('a note over 2,000 characters is stored capped, and a 1,024-character key widens no other row', async () => {
    expect(longKey).toHaveLength(1024);
    await p.load('incoming/regions/short.csv', 'region_id,name\n1,Eastern\n');
    await p.load(longKey, `region_id,name,${extra.join(',')}\n1,Eastern${',v'.repeat(3000)}\n`);
    const full = `columns not in the schema were ignored: ${extra.map((c) => `"${c}"`).join(', ')}`;
    const capped = `${full.slice(0, 2000)}… (${full.length - 2000} more characters)`;
    const file = await newestFileByKey(db, longKey);
    expect(file.note).toBe(capped);

    const status = await cli(['status']);
    expect([status.code, status.stderr]).toEqual([0, '']);
    const lines = status.stdout.split('\n');
    const shown = `${longKey.slice(0, 40)}…${longKey.slice(-39)}`;
    expect(lines[0]).toBe(
      `${'file'.padEnd(80)}  dataset  state   chunks  read  loaded  waiting  rejected  open  seconds`,
    );
    expect(
      lines[1]?.startsWith(`${shown}  regions  loaded  1/1     1     1       0        0         0     `),
    ).toBe(true);
    expect(lines[2]?.startsWith(`${'incoming/regions/short.csv'.padEnd(80)}  regions  loaded  1/1`)).toBe(
      true,
    );
    expect(lines).toContain(`${longKey}: note: ${capped}`);

    const json = await cli(['status', '--json']);
    const files = (JSON.parse(json.stdout) as { files: FileReport[] }).files;
    expect(files[0]?.key).toBe(longKey);
  });

  it('a reject reason over 2,000 characters is stored capped', async () => {
    const file = await newestFileByKey(db, longKey);
    const reason = 'r'.repeat(2500);
    await db
      .transaction()
      .execute((trx) =>
        insertRejects(trx, file.id, 0, [{ line: 99, column: null, kind: 'invalid', reason, raw: 'raw' }]),
      );
    const stored = await db
      .selectFrom('dropload.reject')
      .select('reason')
      .where('file_id', '=', file.id)
      .where('line', '=', 99)
      .executeTakeFirstOrThrow();
    expect(stored.reason).toBe(`${'r'.repeat(2000)}… (500 more characters)`);
  });
});

describe('rejects and wait name the file’s state', () => {
  const badHeader = 'incoming/regions/bad-header.csv';

  it('`rejects` on a failed file says it failed, and why, before the list', async () => {
    await p.load(badHeader, 'a,b\n1,2\n');
    const file = await newestFileByKey(db, badHeader);
    expect(file.state).toBe('failed');
    const ran = await cli(['rejects', badHeader]);
    expect(ran).toEqual({
      code: 0,
      stdout: `${badHeader}: FAILED: ${file.error}\ns3://${p.stack.bucket}/${badHeader} (file ${file.id}, regions): 0 open reject(s)\n`,
      stderr: '',
    });
  });

  it('`wait` exits 0 once a file not yet in the ledger has loaded', async () => {
    const key = 'incoming/regions/later.csv';
    const waiting = cli(['wait', key, '--json', '--timeout', '120']);
    await p.load(key, 'region_id,name\n1,Eastern\n2,Western\n');
    const ran = await waiting;
    expect([ran.code, ran.stderr]).toEqual([0, '']);
    const out = JSON.parse(ran.stdout) as { files: FileReport[]; timedOut: boolean };
    expect(out.timedOut).toBe(false);
    expect(out.files.map((f) => [f.key, f.state, f.rows.loaded])).toEqual([[key, 'loaded', 2]]);
  });

  it('`wait` exits 1 on a failed file, and 1 when the timeout passes', async () => {
    const failed = await cli(['wait', badHeader, 'incoming/regions/later.csv']);
    expect([failed.code, failed.stderr]).toEqual([1, '']);
    expect(failed.stdout).toContain(`${badHeader}: FAILED: header lacks required column(s)`);

    const never = await cli(['wait', 'incoming/regions/never.csv', '--timeout', '1']);
    expect(never).toEqual({
      code: 1,
      stdout: '',
      stderr: 'dropload: timed out after 1s: incoming/regions/never.csv is not in the ledger\n',
    });
  });

  it('`wait` exits 3 when rows of a file wait for their parents', async () => {
    const key = 'incoming/territories/orphans.csv';
    await p.load(key, 'territory_id,name,region_id\nT1,One,901\nT2,Two,902\n');
    const ran = await cli(['wait', key]);
    expect([ran.code, ran.stderr]).toEqual([3, '']);
    expect(ran.stdout).toContain(`${key}: waiting: 2 rows wait for nw.regions (region_id)`);
  });
});
