#!/usr/bin/env node
// `npx dropload`: in the repository, the TypeScript sources (Node 24 strips their types); in the installed
// package, which ships no sources, the built CLI (Node strips no types under node_modules).
import { existsSync } from 'node:fs';
import module from 'node:module';

// Start-up is mostly compiling modules: V8's code cache on disk (in the OS temp folder, or
// NODE_COMPILE_CACHE) halves it from the second run on. Node 20 has no compile cache: it starts without.
module.enableCompileCache?.();

const source = new URL('./dropload.ts', import.meta.url);
await import(existsSync(source) ? source.href : new URL('../dist/cli/dropload.js', import.meta.url).href);
