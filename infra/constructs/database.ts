import { Duration, Fn, RemovalPolicy, Validations } from 'aws-cdk-lib';
import {
  FlowLogDestination,
  FlowLogTrafficType,
  type GatewayVpcEndpoint,
  GatewayVpcEndpointAwsService,
  InstanceType,
  type InterfaceVpcEndpoint,
  InterfaceVpcEndpointAwsService,
  Port,
  SecurityGroup,
  Subnet,
  type SubnetSelection,
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
  DatabaseSecret,
  ParameterGroup,
  PostgresEngineVersion,
} from 'aws-cdk-lib/aws-rds';
import { type ISecret, Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import type { DeployConfig } from '../config.ts';
import type { FunctionNetwork } from './dropload-function.ts';

type Rds = Extract<DeployConfig, { database: 'rds' }>;
type Existing = Extract<DeployConfig, { database: 'existing' }>;

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
const DATABASE_NAME = 'dropload';
/** The role split and load log in as (created by the migrate step, see shared/ledger/roles.ts). */
export const LOADER_USER = 'dropload_loader';

/** The VPC endpoints the functions reach AWS through (rds only), for their endpoint policies. */
export interface DatabaseEndpoints {
  readonly s3: GatewayVpcEndpoint;
  readonly sqs: InterfaceVpcEndpoint;
  readonly secretsManager: InterfaceVpcEndpoint;
}

/** What rotating the stack's own secrets needs (rds only): where the rotation functions run and what they reach. */
export interface RotationTarget {
  readonly secrets: ISecret[];
  readonly network: FunctionNetwork & { vpcSubnets: SubnetSelection };
  readonly instance: DatabaseInstance;
}

/**
 * The PostgreSQL the handlers write to, and everything a function needs to reach it: network placement,
 * connection environment and the grants to read credentials. Two users: the admin (RDS master, or the
 * existing database's admin) that only the migrate function logs in as, and the loader that split and
 * load log in as, with only the privileges the datasets need (created by migrate, shared/ledger/roles.ts).
 *  - `rds`: a new encrypted, TLS-only RDS instance in a VPC with isolated subnets (no NAT) and VPC
 *    endpoints; both users' secrets are generated (and rotated, see rotation.ts).
 *  - `existing`: a database you already run, given by its two Secrets Manager secrets and network ids.
 *  - `local`: a DATABASE_URL (LocalStack has no RDS), and optionally the loader's; nothing is created.
 */
export class Database extends Construct {
  /** Where functions must run to reach the database (undefined: outside any VPC). */
  readonly network?: FunctionNetwork;
  /** Connection settings for split and load: the loader user (DATABASE_URL or DROPLOAD_DB_SECRET_ARN, TLS, pool size). */
  readonly environment: Record<string, string>;
  /** For the migrate function: the admin user, always direct (no proxy), and the loader's secret to manage its role. */
  readonly migrationEnvironment: Record<string, string>;
  /** The admin user's secret (RDS master, or the existing database's). */
  readonly adminSecret?: ISecret;
  /** The loader user's secret. */
  readonly loaderSecret?: ISecret;
  readonly instance?: DatabaseInstance;
  readonly proxy?: DatabaseProxy;
  readonly endpoints?: DatabaseEndpoints;
  readonly rotation?: RotationTarget;

  constructor(scope: Construct, id: string, props: DatabaseProps) {
    super(scope, id);
    const { config } = props;
    const pool = { DROPLOAD_DB_POOL_MAX: String(config.dbPoolMax) };

    if (config.database === 'local') {
      // The compose Postgres has no TLS; the URLs are throwaway local credentials, never AWS ones.
      const local = { ...pool, DROPLOAD_DB_SSL: 'off' };
      this.environment = { ...local, DATABASE_URL: config.loaderDatabaseUrl ?? config.databaseUrl };
      this.migrationEnvironment = {
        ...local,
        DATABASE_URL: config.databaseUrl,
        ...(config.loaderDatabaseUrl ? { DROPLOAD_LOADER_DATABASE_URL: config.loaderDatabaseUrl } : {}),
      };
      return;
    }
    const tls = { ...pool, DROPLOAD_DB_SSL: 'require', NODE_EXTRA_CA_CERTS: RDS_CA_BUNDLE };
    if (config.database === 'existing') {
      const existing = importExisting(this, config);
      this.network = existing.network;
      this.adminSecret = existing.admin;
      this.loaderSecret = existing.loader;
      this.environment = { ...tls, DROPLOAD_DB_SECRET_ARN: existing.loader.secretArn };
      this.migrationEnvironment = {
        ...tls,
        DROPLOAD_DB_SECRET_ARN: existing.admin.secretArn,
        DROPLOAD_LOADER_SECRET_ARN: existing.loader.secretArn,
      };
      return;
    }

    const created = createRds(this, config, props.logRetention);
    this.network = created.network;
    this.adminSecret = created.admin;
    this.loaderSecret = created.loader;
    this.instance = created.instance;
    this.proxy = created.proxy;
    this.endpoints = created.endpoints;
    this.rotation = {
      secrets: [created.admin, created.loader],
      network: created.network,
      instance: created.instance,
    };
    this.environment = {
      ...tls,
      DROPLOAD_DB_SECRET_ARN: created.loader.secretArn,
      // The secret's host is the instance; with a proxy the handlers must dial the proxy instead.
      ...(created.proxy ? { DROPLOAD_DB_HOST: created.proxy.endpoint } : {}),
    };
    this.migrationEnvironment = {
      ...tls,
      DROPLOAD_DB_SECRET_ARN: created.admin.secretArn,
      DROPLOAD_LOADER_SECRET_ARN: created.loader.secretArn,
    };
  }

  /** The stack's database secrets (for the endpoint policy): the admin's and the loader's. */
  get secrets(): ISecret[] {
    return [this.adminSecret, this.loaderSecret].filter((s): s is ISecret => s !== undefined);
  }

  /** Lets split or load read the loader's credentials (network access comes from `network`'s security group). */
  grantConnect(grantee: IGrantable): void {
    this.loaderSecret?.grantRead(grantee);
  }

  /** Lets the migrate function log in as the admin and read the loader's secret, to create and update that role. */
  grantMigrate(grantee: IGrantable): void {
    this.adminSecret?.grantRead(grantee);
    this.loaderSecret?.grantRead(grantee);
  }
}

function importExisting(
  scope: Construct,
  config: Existing,
): { network: FunctionNetwork; admin: ISecret; loader: ISecret } {
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
    admin: Secret.fromSecretCompleteArn(scope, 'Secret', config.existingDbSecretArn),
    loader: Secret.fromSecretCompleteArn(scope, 'LoaderSecret', config.existingLoaderSecretArn),
  };
}

interface CreatedRds {
  network: FunctionNetwork & { vpcSubnets: SubnetSelection };
  admin: ISecret;
  loader: ISecret;
  instance: DatabaseInstance;
  endpoints: DatabaseEndpoints;
  proxy?: DatabaseProxy;
}

function createRds(scope: Construct, config: Rds, logRetention: RetentionDays): CreatedRds {
  // Isolated subnets only: the data path is S3 → SQS → Lambda → Postgres, all reachable through
  // VPC endpoints, so there is no NAT gateway to pay for and no route to the internet.
  const vpc = new Vpc(scope, 'Vpc', {
    maxAzs: 2, // RDS subnet groups need two AZs.
    natGateways: 0,
    subnetConfiguration: [{ name: 'isolated', subnetType: SubnetType.PRIVATE_ISOLATED, cidrMask: 24 }],
  });
  vpc.addFlowLog('FlowLogs', {
    // Rejected traffic is the signal worth keeping; accepted flows would only add cost.
    trafficType: FlowLogTrafficType.REJECT,
    destination: FlowLogDestination.toCloudWatchLogs(
      new LogGroup(scope, 'FlowLogsGroup', { retention: logRetention, removalPolicy: RemovalPolicy.DESTROY }),
    ),
  });
  const isolated = { subnetType: SubnetType.PRIVATE_ISOLATED };
  // split and load send messages (chunks, delayed retries) and back failed ones off with
  // ChangeMessageVisibility (SQS); all three read a secret, and the rotation functions rotate them
  // (Secrets Manager).
  const endpoints: DatabaseEndpoints = {
    s3: vpc.addGatewayEndpoint('S3', { service: GatewayVpcEndpointAwsService.S3 }),
    sqs: vpc.addInterfaceEndpoint('Sqs', { service: InterfaceVpcEndpointAwsService.SQS, subnets: isolated }),
    secretsManager: vpc.addInterfaceEndpoint('SecretsManager', {
      service: InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
      subnets: isolated,
    }),
  };
  for (const endpoint of [endpoints.sqs, endpoints.secretsManager]) {
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
    databaseName: DATABASE_NAME,
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
  const admin = instance.secret;
  if (!admin) throw new Error('RDS instance was created without a credentials secret');
  // Attached to the instance: the attachment adds host and port, which the handlers and the rotation read.
  const loader = new DatabaseSecret(scope, 'LoaderSecret', {
    username: LOADER_USER,
    dbname: DATABASE_NAME,
  }).attach(instance);
  Validations.of(instance).acknowledge({
    id: 'AwsSolutions-RDS11',
    reason: 'Port 5432 is only reachable from the functions security group inside isolated subnets.',
  });
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

  const network = { vpc, vpcSubnets: isolated, securityGroups: [functionsSg] };
  if (!config.rdsProxy) {
    instance.connections.allowDefaultPortFrom(functionsSg, 'dropload functions');
    return { network, admin, loader, instance, endpoints };
  }

  // The proxy multiplexes many short-lived Lambda connections onto a few database connections.
  const proxySg = new SecurityGroup(scope, 'ProxySg', {
    vpc,
    description: 'dropload RDS Proxy',
    allowAllOutbound: true,
  });
  const proxy = instance.addProxy('Proxy', {
    // Only split and load connect through the proxy, and only as the loader.
    secrets: [loader],
    vpc,
    vpcSubnets: isolated,
    securityGroups: [proxySg],
    requireTLS: true,
  });
  proxy.connections.allowFrom(functionsSg, Port.tcp(POSTGRES_PORT), 'dropload functions');
  instance.connections.allowDefaultPortFrom(proxySg, 'RDS Proxy');
  // Migrations run DDL, which belongs on a direct connection rather than a pinned proxy session.
  instance.connections.allowDefaultPortFrom(functionsSg, 'dropload migrate (direct)');
  return { network, admin, loader, instance, endpoints, proxy };
}
