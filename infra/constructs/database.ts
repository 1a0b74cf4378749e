import { Duration, Fn, RemovalPolicy, Validations } from 'aws-cdk-lib';
import {
  FlowLogDestination,
  FlowLogTrafficType,
  GatewayVpcEndpointAwsService,
  InstanceType,
  InterfaceVpcEndpointAwsService,
  Port,
  SecurityGroup,
  Subnet,
  SubnetType,
  Vpc,
} from 'aws-cdk-lib/aws-ec2';
import type { IGrantable } from 'aws-cdk-lib/aws-iam';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import {
  Credentials,
  DatabaseInstance,
  DatabaseInstanceEngine,
  type DatabaseProxy,
  ParameterGroup,
  PostgresEngineVersion,
} from 'aws-cdk-lib/aws-rds';
import { type ISecret, Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import type { DeployConfig } from '../config.ts';
import type { FunctionNetwork } from './dropload-function.ts';

type Rds = Extract<DeployConfig, { database: 'rds' }>;
type Existing = Extract<DeployConfig, { database: 'existing' }>;
type Local = Extract<DeployConfig, { database: 'local' }>;

export interface DatabaseProps {
  readonly config: DeployConfig;
  readonly logRetention: RetentionDays;
}

/**
 * Lambda's Node.js 20+ runtimes no longer trust the Amazon RDS CA bundle by default;
 * pointing Node at it lets `sslmode=require` also verify the server certificate.
 */
const RDS_CA_BUNDLE = '/var/runtime/ca-cert.pem';

const POSTGRES_PORT = 5432;

/**
 * The PostgreSQL the handlers write to, and everything a function needs to reach it:
 * network placement, connection environment and the grant to read credentials.
 *  - `rds`: a new encrypted, TLS-only RDS instance in a VPC with isolated subnets (no NAT) and VPC endpoints.
 *  - `existing`: a database you already run, given by its Secrets Manager secret and network ids.
 *  - `local`: a DATABASE_URL (LocalStack has no RDS); nothing is created.
 */
export class Database extends Construct {
  /** Where functions must run to reach the database (undefined: outside any VPC). */
  readonly network?: FunctionNetwork;
  /** Connection settings for the handlers (DATABASE_URL or DROPLOAD_DB_SECRET_ARN, TLS mode, pool size). */
  readonly environment: Record<string, string>;
  /** Same, but always a direct connection (no proxy): used by the migrate function for DDL. */
  readonly migrationEnvironment: Record<string, string>;
  readonly secret?: ISecret;
  readonly instance?: DatabaseInstance;
  readonly proxy?: DatabaseProxy;

  constructor(scope: Construct, id: string, props: DatabaseProps) {
    super(scope, id);
    const { config } = props;
    const pool = { DROPLOAD_DB_POOL_MAX: String(config.dbPoolMax) };

    if (config.database === 'local') {
      this.environment = { ...pool, ...localEnvironment(config) };
      this.migrationEnvironment = this.environment;
      return;
    }
    if (config.database === 'existing') {
      const existing = importExisting(this, config);
      this.network = existing.network;
      this.secret = existing.secret;
      this.environment = {
        ...pool,
        DROPLOAD_DB_SECRET_ARN: existing.secret.secretArn,
        DROPLOAD_DB_SSL: 'require',
        NODE_EXTRA_CA_CERTS: RDS_CA_BUNDLE,
      };
      this.migrationEnvironment = this.environment;
      return;
    }

    const created = createRds(this, config, props.logRetention);
    this.network = created.network;
    this.secret = created.secret;
    this.instance = created.instance;
    this.proxy = created.proxy;
    this.migrationEnvironment = {
      ...pool,
      DROPLOAD_DB_SECRET_ARN: created.secret.secretArn,
      DROPLOAD_DB_SSL: 'require',
      NODE_EXTRA_CA_CERTS: RDS_CA_BUNDLE,
    };
    this.environment = {
      ...this.migrationEnvironment,
      // The secret's host is the instance; with a proxy the handlers must dial the proxy instead.
      ...(created.proxy ? { DROPLOAD_DB_HOST: created.proxy.endpoint } : {}),
    };
  }

  /** Lets a function read the credentials (network access comes from `network`'s security group). */
  grantConnect(grantee: IGrantable): void {
    this.secret?.grantRead(grantee);
  }
}

function localEnvironment(config: Local): Record<string, string> {
  // The compose Postgres has no TLS; the URL is a throwaway local credential, never an AWS one.
  return { DATABASE_URL: config.databaseUrl, DROPLOAD_DB_SSL: 'off' };
}

function importExisting(scope: Construct, config: Existing): { network: FunctionNetwork; secret: ISecret } {
  // Ids come from context, not Vpc.fromLookup, so synth stays offline and credential-free.
  // AZs only matter for subnet groups inferred from the VPC; the functions get explicit subnets below.
  const vpc = Vpc.fromVpcAttributes(scope, 'Vpc', { vpcId: config.vpcId, availabilityZones: Fn.getAzs() });
  Validations.of(vpc).acknowledge({
    id: 'Annotation::@aws-cdk/aws-ec2:vpcAttributeIsListTokenavailabilityZones',
    reason: 'Nothing derives subnets from this VPC: functions are given explicit subnet ids.',
  });
  const subnets = config.subnetIds.map((subnetId, i) => {
    const subnet = Subnet.fromSubnetId(scope, `Subnet${i}`, subnetId);
    Validations.of(subnet).acknowledge({
      id: 'Annotation::@aws-cdk/aws-ec2:noSubnetRouteTableId',
      reason: 'Lambda only needs the subnet id; route tables are managed with the existing VPC.',
    });
    return subnet;
  });
  // Immutable: the security group (and its access to the database) is managed where the database is.
  const securityGroup = SecurityGroup.fromSecurityGroupId(scope, 'FunctionsSg', config.securityGroupId, {
    mutable: false,
  });
  return {
    network: { vpc, vpcSubnets: { subnets }, securityGroups: [securityGroup] },
    secret: Secret.fromSecretCompleteArn(scope, 'Secret', config.existingDbSecretArn),
  };
}

function createRds(
  scope: Construct,
  config: Rds,
  logRetention: RetentionDays,
): { network: FunctionNetwork; secret: ISecret; instance: DatabaseInstance; proxy?: DatabaseProxy } {
  // Isolated subnets only: the data path is S3 → SQS → Lambda → Postgres, all reachable through
  // VPC endpoints, so there is no NAT gateway to pay for and no route to the internet.
  const vpc = new Vpc(scope, 'Vpc', {
    maxAzs: 2, // RDS subnet groups need two AZs.
    natGateways: 0,
    subnetConfiguration: [{ name: 'isolated', subnetType: SubnetType.PRIVATE_ISOLATED, cidrMask: 24 }],
    gatewayEndpoints: { S3: { service: GatewayVpcEndpointAwsService.S3 } },
  });
  vpc.addFlowLog('FlowLogs', {
    // Rejected traffic is the signal worth keeping; accepted flows would only add cost.
    trafficType: FlowLogTrafficType.REJECT,
    destination: FlowLogDestination.toCloudWatchLogs(
      new LogGroup(scope, 'FlowLogsGroup', { retention: logRetention, removalPolicy: RemovalPolicy.DESTROY }),
    ),
  });
  const isolated = { subnetType: SubnetType.PRIVATE_ISOLATED };
  // split sends chunk messages and load extends visibility (SQS); all three read the secret (Secrets Manager).
  const endpoints = [
    vpc.addInterfaceEndpoint('Sqs', { service: InterfaceVpcEndpointAwsService.SQS, subnets: isolated }),
    vpc.addInterfaceEndpoint('SecretsManager', {
      service: InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
      subnets: isolated,
    }),
  ];
  for (const endpoint of endpoints) {
    Validations.of(endpoint).acknowledge({
      id: 'AwsSolutions-EC23',
      reason: 'Ingress is HTTPS from the VPC CIDR only (CDK default); nag cannot resolve the CIDR token.',
    });
  }

  // Outbound is left open: isolated subnets have no route out, so egress can only reach the VPC and its endpoints.
  const functionsSg = new SecurityGroup(scope, 'FunctionsSg', {
    vpc,
    description: 'dropload Lambda functions (database clients)',
    allowAllOutbound: true,
  });

  const engine = DatabaseInstanceEngine.postgres({ version: PostgresEngineVersion.VER_17 });
  const instance = new DatabaseInstance(scope, 'Instance', {
    engine,
    instanceType: new InstanceType(config.dbInstanceType),
    port: POSTGRES_PORT,
    vpc,
    vpcSubnets: isolated,
    databaseName: 'dropload',
    // Generated password, stored in Secrets Manager as the RDS JSON shape the handlers parse.
    credentials: Credentials.fromGeneratedSecret('dropload'),
    storageEncrypted: true,
    allocatedStorage: 20,
    maxAllocatedStorage: 100,
    multiAz: config.dbMultiAz,
    backupRetention: Duration.days(7),
    deletionProtection: config.dbDeletionProtection,
    removalPolicy: RemovalPolicy.SNAPSHOT,
    publiclyAccessible: false,
    autoMinorVersionUpgrade: true,
    // TLS is required server-side, not just requested by clients.
    parameterGroup: new ParameterGroup(scope, 'Parameters', { engine, parameters: { 'rds.force_ssl': '1' } }),
  });
  const secret = instance.secret;
  if (!secret) throw new Error('RDS instance was created without a credentials secret');
  Validations.of(instance).acknowledge(
    {
      id: 'AwsSolutions-RDS11',
      reason: 'Port 5432 is only reachable from the functions security group inside isolated subnets.',
    },
    {
      id: 'AwsSolutions-SMG4',
      reason:
        'Handlers cache credentials per cold start; rotation needs a reconnect-on-auth-failure path first.',
    },
  );
  if (!config.dbMultiAz) {
    Validations.of(instance).acknowledge({
      id: 'AwsSolutions-RDS3',
      reason: 'Single-AZ by default to keep idle cost low; deploy with -c dbMultiAz=true for production.',
    });
  }
  if (!config.dbDeletionProtection) {
    Validations.of(instance).acknowledge({
      id: 'AwsSolutions-RDS10',
      reason:
        'Deletion protection was turned off explicitly (-c dbDeletionProtection=false) for a disposable stack.',
    });
  }

  if (!config.rdsProxy) {
    instance.connections.allowDefaultPortFrom(functionsSg, 'dropload functions');
    return { network: { vpc, vpcSubnets: isolated, securityGroups: [functionsSg] }, secret, instance };
  }

  // The proxy multiplexes many short-lived Lambda connections onto a few database connections.
  const proxySg = new SecurityGroup(scope, 'ProxySg', {
    vpc,
    description: 'dropload RDS Proxy',
    allowAllOutbound: true,
  });
  const proxy = instance.addProxy('Proxy', {
    secrets: [secret],
    vpc,
    vpcSubnets: isolated,
    securityGroups: [proxySg],
    requireTLS: true,
  });
  proxy.connections.allowFrom(functionsSg, Port.tcp(POSTGRES_PORT), 'dropload functions');
  instance.connections.allowDefaultPortFrom(proxySg, 'RDS Proxy');
  // Migrations run DDL, which belongs on a direct connection rather than a pinned proxy session.
  instance.connections.allowDefaultPortFrom(functionsSg, 'dropload migrate (direct)');
  return { network: { vpc, vpcSubnets: isolated, securityGroups: [functionsSg] }, secret, instance, proxy };
}
