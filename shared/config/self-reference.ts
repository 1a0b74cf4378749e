import nodeModule from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * The public entry of this copy of dropload (index.ts in the repository, index.js in the package):
 * what `import … from 'dropload'` means in a config module this copy loads or bundles.
 */
export const PUBLIC_ENTRY: string = fileURLToPath(
  new URL(`./index${path.extname(fileURLToPath(import.meta.url))}`, import.meta.url),
);

let registered = false;

/**
 * A config module may live anywhere on disk, with or without dropload in a node_modules above it: its
 * `import … from 'dropload'` resolves to the copy that loads it, so the config and the CLI share one
 * set of definitions. (Node 20 has no module.registerHooks; there the config's own node_modules decides.)
 */
export function resolveDroploadToThisCopy(): void {
  if (registered || typeof nodeModule.registerHooks !== 'function') return;
  registered = true;
  const url = pathToFileURL(PUBLIC_ENTRY).href;
  nodeModule.registerHooks({
    resolve: (specifier, context, nextResolve) =>
      specifier === 'dropload' ? { url, shortCircuit: true } : nextResolve(specifier, context),
  });
}
