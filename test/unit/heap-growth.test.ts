import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const exec = promisify(execFile);

describe('boundHeapGrowth', () => {
  it('fixes the growing factor V8 sets after each full collection at 2, whatever it would pick', async () => {
    const module = path.resolve('shared/core/heap-growth.ts');
    const script = `const { boundHeapGrowth } = await import(${JSON.stringify(module)});
      boundHeapGrowth();
      globalThis.gc();
      globalThis.gc();`;
    // `--trace-gc-verbose` prints the factor after each full collection (4.0 on a roomy machine without the bound).
    const { stdout } = await exec(process.execPath, [
      '--expose-gc',
      '--trace-gc-verbose',
      '--input-type=module',
      '-e',
      script,
    ]);
    const factors = [...stdout.matchAll(/\[HeapController\] factor (\d+\.\d)/g)].map((m) => m[1]);
    expect(factors).toEqual(['2.0', '2.0']);
  });
});
