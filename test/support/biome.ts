import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

const BIOME = path.resolve('node_modules/.bin/biome');

/**
 * What `biome check --write` (this repository's biome.json: format, safe lint fixes, import order)
 * makes of a TypeScript text. Through stdin: the generated files sit in git-ignored folders, which
 * biome skips when they are named.
 */
function biomeCheck(text: string, name = 'generated.ts'): Promise<string> {
  return new Promise((resolve, reject) => {
    const args = ['check', '--write', `--stdin-file-path=${name}`];
    const child = execFile(BIOME, args, (err, stdout, stderr) =>
      err ? reject(new Error(`biome check: ${stderr}`)) : resolve(stdout),
    );
    child.stdin?.end(text);
  });
}

/** The .ts and .json files under `dir` (relative paths, sorted) that `biome check --write` would change. */
export async function biomeChanged(dir: string): Promise<string[]> {
  const files = (await readdir(dir, { recursive: true })).filter((f) => /\.(ts|json)$/.test(f)).sort();
  const changed: string[] = [];
  for (const f of files) {
    const text = await readFile(path.join(dir, f), 'utf8');
    if ((await biomeCheck(text, `generated${path.extname(f)}`)) !== text) changed.push(f);
  }
  return changed;
}
