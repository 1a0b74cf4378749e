// The public CDK API (`import { Dropload, droploadProps } from 'dropload/cdk'`): the pipeline as one
// construct for a CDK app of your own. package.json `exports` "./cdk" points here (built: dist/infra/index.js).
import path from 'node:path';
import { type DeployInput, loadDatasetPrefixes, parseDeployConfig } from './config.ts';
import type { DroploadProps } from './dropload.ts';

export { type DeployConfig, type DeployInput, loadDatasetPrefixes, parseDeployConfig } from './config.ts';
export { Dropload, type DroploadProps } from './dropload.ts';

/**
 * Props for `new Dropload(…)` from a config module and the deploy settings (the keys docs/deploy.md
 * lists as CDK context). Async because the module's dataset prefixes are read by importing it, which a
 * construct's constructor cannot wait for.
 */
export async function droploadProps(
  configModule: string,
  settings: DeployInput = {},
): Promise<DroploadProps> {
  const absolute = path.resolve(configModule);
  return {
    config: parseDeployConfig(settings),
    configModule: absolute,
    datasetPrefixes: await loadDatasetPrefixes(absolute),
  };
}
