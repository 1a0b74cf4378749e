import { execFile, execFileSync } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const exec = promisify(execFile);

/**
 * `cli/bin.js` under a Node that cannot strip types (the machine's own, outside the repository's
 * `node` devDependency: `npx --prefix DIR dropload` from another folder runs it): one line, exit 1.
 */
describe('cli/bin.js on Node < 24', () => {
  it('says which Node it needs and how to run it, without a stack', async () => {
    const system = '/usr/bin/node';
    const version = execFileSync(system, ['--version'], { encoding: 'utf8' }).trim();
    // What this test needs from the machine: a Node older than 24 besides the repository's.
    expect(Number(version.slice(1).split('.')[0])).toBeLessThan(24);
    const bin = path.resolve('cli/bin.js');
    const run = exec(system, [bin, 'status'], { cwd: '/tmp' });
    await expect(run).rejects.toMatchObject({
      code: 1,
      stdout: '',
      stderr: `dropload: this copy runs from its TypeScript sources, which need Node >= 24 (this is ${version}, the repository's \`node\` devDependency is one): run it from ${path.resolve('.')}/ as npx dropload ARGS, or npm run dropload -- ARGS\n`,
    });
  });
});
