import { Stack, type StackProps, Tags } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { Dropload, type DroploadProps } from './dropload.ts';

export interface DroploadStackProps extends StackProps, DroploadProps {}

/** This repository's deployment (`npx cdk deploy`): a stack holding the Dropload construct and nothing else. */
export class DroploadStack extends Stack {
  /** The pipeline. Its id is 'Default', which CDK leaves out of logical ids: the resources keep the ids they had as direct children of the stack. */
  readonly pipeline: Dropload;

  constructor(scope: Construct, id: string, props: DroploadStackProps) {
    super(scope, id, props);
    Tags.of(this).add('project', 'dropload');
    this.pipeline = new Dropload(this, 'Default', props);
  }
}
