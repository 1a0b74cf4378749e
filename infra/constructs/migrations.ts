import { Duration } from 'aws-cdk-lib';
import { Trigger } from 'aws-cdk-lib/triggers';
import { Construct } from 'constructs';
import type { DroploadFunction } from './dropload-function.ts';

export interface MigrationsProps {
  /** The migrate function: no-arg handler that applies pending migrations and throws on failure. */
  readonly migrate: DroploadFunction;
  /** Everything that must exist before migrations can connect (database, endpoints, grants). */
  readonly after: Construct[];
}

/**
 * Runs the migrate function during `cdk deploy`, after the database exists, so a deploy leaves a
 * ready schema. The invocation is synchronous: if the handler throws, the deploy fails and rolls back.
 */
export class Migrations extends Construct {
  readonly trigger: Trigger;

  constructor(scope: Construct, id: string, props: MigrationsProps) {
    super(scope, id);
    this.trigger = new Trigger(this, 'Run', {
      handler: props.migrate.handler,
      // Re-run whenever the bundle changes; the migration list is bundled, so new migrations change it.
      executeOnHandlerChange: true,
      executeAfter: props.after,
      // Must cover the handler's own timeout (a cold start in a VPC plus the DDL).
      timeout: props.migrate.handler.timeout ?? Duration.minutes(5),
    });
  }
}
