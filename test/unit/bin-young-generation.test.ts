import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const exec = promisify(execFile);

/**
 * `npx dropload` runs cli/bin.js by its shebang, which starts Node with the Lambdas' young generation
 * (`--max-semi-space-size=8`, HANDLER_NODE_OPTIONS): V8 takes that flag only at start-up, and with its
 * default young generation `run` held 64–128 MB of it on the 1,000,000-row file (README, Performance).
 * Its environment fixes malloc's mmap threshold, which glibc too reads only at start-up (see cli/bin.js).
 */
describe('cli/bin.js run as a program', () => {
  it('starts Node with the Lambdas young generation', async () => {
    const bin = path.resolve('cli/bin.js');
    // A preload that prints the Node flags the shebang gave, before the CLI prints its help.
    const preload = 'data:text/javascript,console.error(JSON.stringify(process.execArgv))';
    const { stderr, stdout } = await exec(bin, ['--help'], {
      env: { ...process.env, NODE_OPTIONS: `--import=${preload}` },
    });
    expect(stderr).toBe('["--max-semi-space-size=8"]\n');
    expect(stdout).toContain('Usage: dropload');
  });

  it('starts it with malloc mapping blocks of 1 MiB and more on their own', async () => {
    const bin = path.resolve('cli/bin.js');
    // glibc reads the variable once, at start-up: the shebang's environment is the only place for it.
    const preload = 'data:text/javascript,console.error(process.env.MALLOC_MMAP_THRESHOLD_)';
    const { MALLOC_MMAP_THRESHOLD_: _, ...env } = process.env;
    const { stderr } = await exec(bin, ['--help'], { env: { ...env, NODE_OPTIONS: `--import=${preload}` } });
    expect(stderr).toBe('1048576\n');
  });
});
