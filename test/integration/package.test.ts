import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, createPool } from '../../shared/ledger/connection.ts';
import { resetDatabase } from '../support/pipeline.ts';

// The package as a user gets it: `npm pack` (which builds dist/), the tarball unpacked as
// node_modules/dropload of a fresh project that holds only its own config, migration, CSV and CDK app.
// Its other dependencies are this repository's, linked in (installing them would take minutes).

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const TABLE = 'pkg_items';
const { context: cdkContext } = JSON.parse(readFileSync(path.join(ROOT, 'cdk.json'), 'utf8')) as {
  context: Record<string, unknown>;
};
let project: string;
let tarball: string;

const files: Record<string, string> = {
  'package.json': JSON.stringify({ name: 'dropload-user', private: true, type: 'module' }),
  // NodejsFunction finds the app's lock file from the working directory.
  'package-lock.json': JSON.stringify({ name: 'dropload-user', lockfileVersion: 3, packages: {} }),
  'dropload.config.ts': `import { defineConfig, defineDataset, integer } from 'dropload';
import { z } from 'zod';
import * as items from './migrations/001_items.ts';

export default defineConfig({
  datasets: [
    defineDataset({
      name: 'items',
      format: 'csv',
      table: '${TABLE}',
      mode: 'insert',
      schema: z.object({ id: integer(), name: z.string().min(1) }),
    }),
  ],
  migrations: { '001_items': items },
});
`,
  'migrations/001_items.ts': `import { type Kysely, sql } from 'kysely';
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql\`create table ${TABLE} (id integer primary key, name text not null)\`.execute(db);
}
`,
  'data/items/items.csv': 'id,name\n1,apple\n2,pear\nthree,plum\n4,\n5,fig\n',
  // The feature flags `cdk init` writes (the constructs assume them), without this repository's own settings.
  'cdk.json': JSON.stringify({
    app: 'node app.ts',
    context: Object.fromEntries(Object.entries(cdkContext).filter(([key]) => key.includes(':'))),
  }),
  'app.ts': `import { App, Stack } from 'aws-cdk-lib';
import { Dropload, droploadProps } from 'dropload/cdk';

const app = new App();
const stack = new Stack(app, 'Mine');
new Dropload(stack, 'Loader', await droploadProps('dropload.config.ts', {
  database: 'local',
  databaseUrl: 'postgres://postgres:postgres@postgres:5432/postgres',
}));
app.synth();
`,
};

/** Links this repository's dependencies (and their bins) into the project, next to the unpacked package. */
async function linkDependencies(modules: string): Promise<void> {
  const source = path.join(ROOT, 'node_modules');
  for (const entry of await readdir(source)) {
    if (entry === '.bin' || entry === 'dropload' || entry.startsWith('.')) continue;
    await symlink(path.join(source, entry), path.join(modules, entry));
  }
  await mkdir(path.join(modules, '.bin'));
  for (const bin of await readdir(path.join(source, '.bin'))) {
    await symlink(path.join(source, '.bin', bin), path.join(modules, '.bin', bin));
  }
  await symlink('../dropload/cli/bin.js', path.join(modules, '.bin', 'dropload'));
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

beforeAll(async () => {
  project = await mkdtemp(path.join(tmpdir(), 'dropload-package-'));
  const { stdout } = await run('npm', ['pack', '--silent', '--pack-destination', project], { cwd: ROOT });
  tarball = path.join(project, stdout.trim().split('\n').at(-1) ?? '');
  const modules = path.join(project, 'node_modules');
  await mkdir(modules);
  await run('tar', ['-xzf', tarball, '-C', modules]);
  await rename(path.join(modules, 'package'), path.join(modules, 'dropload'));
  await linkDependencies(modules);
  for (const [name, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(project, name)), { recursive: true });
    await writeFile(path.join(project, name), content);
  }
}, 180_000);

afterAll(async () => {
  if (project) await rm(project, { recursive: true, force: true });
});

const npx = (args: string[], env: Record<string, string | undefined> = {}) =>
  run('npx', args, { cwd: project, env: { ...process.env, AWS_ENDPOINT_URL: undefined, ...env } });

describe('the packed package, installed in a project of its own', () => {
  it('ships built JavaScript and declarations, no TypeScript sources', async () => {
    const { stdout } = await run('tar', ['-tzf', tarball]);
    const entries = stdout.trim().split('\n');
    expect(entries).toEqual(
      expect.arrayContaining([
        'package/dist/shared/config/index.js',
        'package/dist/shared/config/index.d.ts',
        'package/dist/infra/index.js',
        'package/dist/cli/dropload.js',
        // `dropload console`'s page, served as it is (no build step).
        'package/cli/console/index.html',
        'package/cli/console/console.js',
        'package/cli/console/console.css',
      ]),
    );
    expect(entries.filter((e) => e.endsWith('.ts') && !e.endsWith('.d.ts'))).toEqual([]);
    expect(entries.filter((e) => /\/(samples|dropload\.config)/.test(e))).toEqual([]);
  });

  // It checks the rows from outside the installed project's process, so it needs a server at DATABASE_URL (CI sets it).
  it.runIf(process.env.DATABASE_URL)(
    'npx dropload run loads the CSV with exact rows, the config importing from dropload',
    async () => {
      await resetDatabase([TABLE]);
      const { stdout } = await npx(['dropload', 'run', 'data/items', '--dataset', 'items', '--json']);
      const { files: reports } = JSON.parse(stdout) as {
        files: { state: string; rows: { read: number; loaded: number; rejected: number } }[];
      };
      expect(reports.map((r) => [r.state, r.rows.read, r.rows.loaded, r.rows.rejected])).toEqual([
        ['loaded', 5, 3, 2],
      ]);
      const db = createDb(createPool({ connectionString: process.env.DATABASE_URL ?? '', poolMax: 1 }));
      try {
        const { rows } = await sql<{
          id: number;
          name: string;
        }>`select id, name from ${sql.table(TABLE)} order by id`.execute(db);
        expect(rows).toEqual([
          { id: 1, name: 'apple' },
          { id: 2, name: 'pear' },
          { id: 5, name: 'fig' },
        ]);
      } finally {
        await db.destroy();
        await resetDatabase([TABLE]);
      }
    },
  );

  /** SIGTERM to a process group; one already gone (ESRCH) is what was wanted. */
  const killGroup = (pid: number | undefined) => {
    try {
      if (pid !== undefined) process.kill(-pid, 'SIGTERM');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
    }
  };

  it("npx dropload console serves its page from the installed package's files", async () => {
    const port = await freePort();
    // The page needs no database: one nothing answers at is enough for it to start.
    const child = spawn('npx', ['dropload', 'console', '--port', String(port)], {
      cwd: project,
      env: {
        ...process.env,
        DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none',
        AWS_ENDPOINT_URL: undefined,
      },
      stdio: ['ignore', 'pipe', 'inherit'],
      // Its own process group: npx does not pass SIGTERM on to the console it starts, and a console left
      // running holds this worker's stderr open, so vitest would wait for it forever.
      detached: true,
    });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => {
          if (String(d).includes(`dropload console: http://127.0.0.1:${port}/`)) resolve();
        });
        child.once('exit', (code) => reject(new Error(`console exited with ${code}`)));
      });
      const base = `http://127.0.0.1:${port}`;
      const page = await fetch(`${base}/`);
      expect([page.status, (await page.text()).includes('<script type="module" src="/console.js">')]).toEqual(
        [200, true],
      );
      const script = await fetch(`${base}/console.js`);
      expect([script.status, script.headers.get('content-type')]).toEqual([
        200,
        'text/javascript; charset=utf-8',
      ]);
    } finally {
      killGroup(child.pid);
      await exited;
    }
  });

  it('npx cdk synth builds an app that instantiates Dropload from dropload/cdk', async () => {
    await npx(['cdk', 'synth', '-q', '-o', 'cdk.out']);
    const template = JSON.parse(await readFile(path.join(project, 'cdk.out/Mine.template.json'), 'utf8')) as {
      Resources: Record<string, { Type: string }>;
    };
    const types = Object.values(template.Resources).map((r) => r.Type);
    expect(types.filter((t) => t === 'AWS::SQS::Queue')).toHaveLength(4);
    expect(types.filter((t) => t === 'AWS::Lambda::Function').length).toBeGreaterThanOrEqual(3);
  });
});
