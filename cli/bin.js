#!/usr/bin/env -S MALLOC_MMAP_THRESHOLD_=1048576 node --max-semi-space-size=8
// `npx dropload`: in the repository, the TypeScript sources (Node 24 strips their types); in the installed
// package, which ships no sources, the built CLI (Node strips no types under node_modules).
// The shebang gives Node the Lambdas' young generation (HANDLER_NODE_OPTIONS): V8 sizes it only at
// start-up, and its default let `run` hold 64-128 MB of it on the bench's 1,000,000-row file without
// saving any CPU (README, Performance). It also gives glibc's malloc a fixed mmap threshold, read only
// at start-up: blocks of 1 MiB and more (a chunk's bytes and text, 8 MiB each) are mapped on their own
// and go back to the system when freed. Left to itself malloc raises the threshold to the largest block
// freed, so chunks came from its heap, whose freed middle it keeps: `run` on the 1 GB file peaked 26 MB
// higher in a pair of runs (README, Performance). Other C libraries ignore the variable. `env -S` splits the line
// (coreutils >= 8.30, macOS; npm's Windows shims read it too).
import { existsSync } from 'node:fs';
import module from 'node:module';

// Start-up is mostly compiling modules: V8's code cache on disk (in the OS temp folder, or
// NODE_COMPILE_CACHE) halves it from the second run on. Node 20 has no compile cache: it starts without.
module.enableCompileCache?.();

const source = new URL('./dropload.ts', import.meta.url);
const MIN_MAJOR = 24;
const major = Number(process.versions.node.split('.')[0]);
// An older Node cannot read the sources: one line saying so, not its ERR_UNKNOWN_FILE_EXTENSION stack.
if (existsSync(source) && major < MIN_MAJOR) {
  process.stderr.write(
    `dropload: this copy runs from its TypeScript sources, which need Node >= ${MIN_MAJOR} (this is ${process.version}, the repository's \`node\` devDependency is one): run it from ${new URL('..', import.meta.url).pathname} as npx dropload ARGS, or npm run dropload -- ARGS\n`,
  );
  process.exit(1);
}
await import(existsSync(source) ? source.href : new URL('../dist/cli/dropload.js', import.meta.url).href);
