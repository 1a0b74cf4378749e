import { fileURLToPath } from 'node:url';

/** Repository root: bundling runs from here so `#dropload-config` resolves through package.json `imports`. */
export const projectRoot: string = fileURLToPath(new URL('..', import.meta.url));

/** The lock file NodejsFunction hashes for its asset and uses to pick the package manager. */
export const lockFile: string = fileURLToPath(new URL('../package-lock.json', import.meta.url));

/** Handler entry files, one per Lambda function (the application owns their contents). */
export const entries = {
  split: fileURLToPath(new URL('../functions/split.ts', import.meta.url)),
  load: fileURLToPath(new URL('../functions/load.ts', import.meta.url)),
  migrate: fileURLToPath(new URL('../functions/migrate.ts', import.meta.url)),
} as const;

/** The dataset config module the handlers import as `#dropload-config` unless overridden. */
export const defaultConfigModule: string = fileURLToPath(new URL('../dropload.config.ts', import.meta.url));
