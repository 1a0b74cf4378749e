import { App, type AppProps } from 'aws-cdk-lib';
import { loadDatasetPrefixes, readDeployConfig, resolveConfigModule } from './config.ts';
import { applyNagPacks } from './nag.ts';
import { DroploadStack } from './stack.ts';

export interface BuildOptions extends AppProps {
  /** Register the cdk-nag packs as synth-time validation plugins (the CLI path). Default true. */
  readonly nag?: boolean;
}

/** Builds the dropload app from its context: shared by `infra/app.ts` and the infra tests. */
export async function buildApp(options: BuildOptions = {}): Promise<{ app: App; stack: DroploadStack }> {
  const { nag = true, ...appProps } = options;
  const app = new App(appProps);
  const config = readDeployConfig(app.node);
  const configModule = resolveConfigModule(config);
  const datasetPrefixes = await loadDatasetPrefixes(configModule);

  // Environment-agnostic on purpose: synth needs no account, no credentials and no lookups.
  const stack = new DroploadStack(app, config.stackName, {
    description: `dropload: S3 → SQS → Lambda → PostgreSQL loader (database=${config.database})`,
    config,
    configModule,
    datasetPrefixes,
  });
  if (nag) applyNagPacks(app);
  return { app, stack };
}
