import { exec as execCallback } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SHOP_ROWS } from '../support/init-tables.ts';

/**
 * `init`'s printed next step, run exactly as printed, in a shell: the user of README's init section
 * ran each printed `run`, with no DATABASE_URL; each started an embedded database of its own and
 * dropped it at exit, so every child file ended `waiting` (exit 3) and no table was left anywhere.
 * On the embedded database (no DATABASE_URL) and, when the tests have one, on Postgres: every printed
 * command exits 0, every file is `loaded` with nothing waiting, and each table gets exactly its rows.
 */

const exec = promisify(execCallback);
const server = process.env.DATABASE_URL;
// Inside the repository, so the generated modules' `import … from 'dropload'` is this copy.
const ROOT = '.dropload/test-init-next';
let dir: string;

beforeAll(async () => {
  await mkdir(ROOT, { recursive: true });
  dir = path.relative('.', await mkdtemp(path.join(ROOT, 'run-')));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The environment of a user's shell: DATABASE_URL as given, no emulator endpoint. */
function shellEnv(databaseUrl: string | undefined): NodeJS.ProcessEnv {
  const { DATABASE_URL: _url, AWS_ENDPOINT_URL: _endpoint, ...env } = process.env;
  return databaseUrl ? { ...env, DATABASE_URL: databaseUrl } : env;
}

/** A command line as a user's shell runs it: its exit code and stdout. */
async function shell(command: string, env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string }> {
  try {
    return { code: 0, stdout: (await exec(command, { env, maxBuffer: 16 * 1024 * 1024 })).stdout };
  } catch (err) {
    const failed = err as { code: number; stdout: string };
    return { code: failed.code, stdout: failed.stdout };
  }
}

/** The `next:` block of init's summary: its header and commands. */
function nextStep(summary: string): { header: string; commands: string[] } {
  const lines = summary.trimEnd().split('\n');
  const at = lines.findIndex((l) => l.startsWith('next: '));
  return { header: lines[at] as string, commands: lines.slice(at + 1).map((l) => l.trim()) };
}

interface FileLine {
  dataset: string;
  state: string;
  loaded: number;
  waiting: number;
}

/** The report's file lines (`file  dataset  state  chunks  read  loaded  waiting  …`). */
function fileLines(report: string): FileLine[] {
  return report
    .split('\n')
    .filter((l) => l.startsWith('incoming/'))
    .map((l) => {
      const [, dataset, state, , , loaded, waiting] = l.split(/ {2,}/);
      return {
        dataset: dataset as string,
        state: state as string,
        loaded: Number(loaded),
        waiting: Number(waiting),
      };
    });
}

/** Rows loaded per dataset, over every run's report. */
function loadedPerTable(files: FileLine[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const f of files) out[f.dataset] = (out[f.dataset] ?? 0) + f.loaded;
  return out;
}

/** A database of its own beside the tests' one (a config refuses a database another config migrated). */
async function ownDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `dropload_next_${randomBytes(4).toString('hex')}`;
  const admin = async (statement: string) => {
    const client = new pg.Client({ connectionString: server });
    await client.connect();
    try {
      await client.query(statement);
    } finally {
      await client.end();
    }
  };
  await admin(`create database ${name}`);
  const url = new URL(server as string);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => admin(`drop database if exists ${name} with (force)`) };
}

async function tableCounts(url: string, schema: string, tables: string[]): Promise<Record<string, number>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const out: Record<string, number> = {};
    for (const t of tables)
      out[t] = (await client.query<{ n: number }>(`select count(*)::int as n from ${schema}.${t}`)).rows[0]
        ?.n as number;
    return out;
  } finally {
    await client.end();
  }
}

const SETS = [
  {
    // 12 CSVs in one folder, each named after its table, 3 levels of parents.
    set: 'shop',
    rows: SHOP_ROWS,
  },
  {
    // A TSV parent, monthly exports (one gzipped) of its child, and a folder named after a grandchild.
    set: 'monthly',
    rows: { returns: 3, sales: 7, stores: 3 },
  },
];

const EMBEDDED =
  'next: load every file in one run (it applies the migrations; children wait for their parents within it), into an embedded database, gone when run exits (set DATABASE_URL to keep the tables):';
const SERVER =
  'next: load every file in one run (it applies the migrations; children wait for their parents within it), into the database at DATABASE_URL:';

const databases = [
  { name: 'the embedded database (no DATABASE_URL)', postgres: false },
  ...(server ? [{ name: 'Postgres (DATABASE_URL)', postgres: true }] : []),
];

describe.each(databases)('init, then its next step as printed, on $name', ({ postgres }) => {
  it.each(SETS)(
    '$set: every file loads, each table gets exactly its rows, none wait',
    {
      timeout: 240_000,
    },
    async ({ set, rows }) => {
      const own = postgres ? await ownDatabase() : undefined;
      try {
        const env = shellEnv(own?.url);
        const out = path.join(dir, `${set}-${postgres ? 'pg' : 'embedded'}`);
        const init = await shell(
          `npx dropload init test/fixtures/init/${set} --schema ${set} --out ${out}`,
          env,
        );
        expect(init.code).toBe(0);
        const next = nextStep(init.stdout);
        const runs = [];
        for (const command of next.commands) runs.push(await shell(command, env));
        expect(runs.map((r) => r.code)).toEqual(next.commands.map(() => 0));
        const files = runs.flatMap((r) => fileLines(r.stdout));
        expect(files.filter((f) => f.state !== 'loaded' || f.waiting !== 0)).toEqual([]);
        expect(loadedPerTable(files)).toEqual(rows);
        expect(next).toEqual({
          header: postgres ? SERVER : EMBEDDED,
          commands: [`npx dropload --config ${out}/dropload.config.ts run test/fixtures/init/${set}`],
        });
        if (own) expect(await tableCounts(own.url, set, Object.keys(rows))).toEqual(rows);
      } finally {
        await own?.drop();
      }
    },
  );
});
