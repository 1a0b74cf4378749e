import { Duration } from 'aws-cdk-lib';
import { SecurityGroup } from 'aws-cdk-lib/aws-ec2';
import { HostedRotation, RotationSchedule } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import type { RotationTarget } from './database.ts';

export interface CredentialRotationProps {
  readonly target: RotationTarget;
  /**
   * What must have run before the first rotation: the migrate trigger, which creates the loader role.
   * A rotation starts as soon as its schedule exists, and single-user rotation logs in as the role itself.
   */
  readonly after: Construct;
}

/** Every 30 days: short enough to bound a leaked password, rare enough that its few seconds of refused logins do not matter. */
export const ROTATION_INTERVAL = Duration.days(30);

/**
 * Rotates the database secrets with Secrets Manager's hosted single-user rotation: the rotation function
 * logs in as the secret's own user and changes its password. Single-user rather than alternating users:
 * the loader role owns its staging tables and holds grants that a second, alternating login role would
 * have to duplicate, and single-user needs no admin secret. Its cost is a moment (between the password
 * change and the new secret version) in which new connections are refused: open sessions are not affected
 * (PostgreSQL authenticates only at connect), and the handlers re-read the secret and retry on an
 * authentication failure (shared/ledger/connection.ts RenewingPool). The migrate function reads the admin
 * secret afresh on every run.
 */
export class CredentialRotation extends Construct {
  readonly schedules: RotationSchedule[];

  constructor(scope: Construct, id: string, props: CredentialRotationProps) {
    super(scope, id);
    const { network, instance, secrets } = props.target;
    // Isolated subnets: the rotation functions reach Secrets Manager through its VPC endpoint and the database directly.
    const securityGroup = new SecurityGroup(this, 'Sg', {
      vpc: network.vpc,
      description: 'dropload secret rotation functions',
      allowAllOutbound: true,
    });
    instance.connections.allowDefaultPortFrom(securityGroup, 'secret rotation');
    this.schedules = secrets.map((secret, i) => {
      const schedule = new RotationSchedule(this, `Schedule${i}`, {
        secret,
        hostedRotation: HostedRotation.postgreSqlSingleUser({
          vpc: network.vpc,
          vpcSubnets: network.vpcSubnets,
          securityGroups: [securityGroup],
        }),
        automaticallyAfter: ROTATION_INTERVAL,
      });
      schedule.node.addDependency(props.after);
      return schedule;
    });
  }
}
