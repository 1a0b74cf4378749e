import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// `.ts` in the repository, `.js` in the installed package (dist/): the handler entries are their siblings.
const extension = path.extname(fileURLToPath(import.meta.url));
const local = (relative: string) => fileURLToPath(new URL(relative, import.meta.url));
const repositoryLock = local('../package-lock.json');
const inRepository = extension === '.ts' && existsSync(repositoryLock);

/**
 * Repository root: bundling runs from here, against the repository's lock file.
 * Undefined in the installed package: NodejsFunction then finds the app's own lock file from the working directory.
 */
export const projectRoot: string | undefined = inRepository ? local('..') : undefined;

/** The lock file NodejsFunction hashes for its asset and uses to pick the package manager (see projectRoot). */
export const lockFile: string | undefined = inRepository ? repositoryLock : undefined;

/** Handler entry files, one per Lambda function (the application owns their contents). */
export const entries = {
  split: local(`../functions/split${extension}`),
  load: local(`../functions/load${extension}`),
  migrate: local(`../functions/migrate${extension}`),
  sweep: local(`../functions/sweep${extension}`),
} as const;

/** The dataset config module the handlers import as `#dropload-config` unless overridden. */
export const defaultConfigModule: string = local('../dropload.config.ts');
