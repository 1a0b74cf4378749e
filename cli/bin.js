#!/usr/bin/env node
// `npx dropload`: in the repository, the TypeScript sources (Node 24 strips their types); in the installed
// package, which ships no sources, the built CLI (Node strips no types under node_modules).
import { existsSync } from 'node:fs';

const source = new URL('./dropload.ts', import.meta.url);
await import(existsSync(source) ? source.href : new URL('../dist/cli/dropload.js', import.meta.url).href);
