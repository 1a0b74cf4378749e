#!/usr/bin/env node
// CDK entry (cdk.json: "node infra/app.ts"): Node 24 runs this TypeScript directly.
import { buildApp } from './build.ts';

try {
  await buildApp();
} catch (err) {
  // Configuration mistakes are the common case: print the message, not a stack trace.
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
}
