import { Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, ServerlessChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';

/** The cdk-nag 3 packs every synth runs; tests call `validateScope` on the same list. */
export function nagPacks(scope?: IConstruct): [AwsSolutionsChecks, ServerlessChecks] {
  return [new AwsSolutionsChecks(scope, { verbose: true }), new ServerlessChecks(scope, { verbose: true })];
}

/** Register the packs as CDK policy-validation plugins: findings fail `cdk synth`/`cdk deploy`. */
export function applyNagPacks(scope: IConstruct): void {
  Validations.of(scope).addPlugins(...nagPacks(scope));
}
