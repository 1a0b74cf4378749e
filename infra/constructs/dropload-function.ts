import { type Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import type { ISecurityGroup, IVpc, SubnetSelection } from 'aws-cdk-lib/aws-ec2';
import { Architecture, Runtime, Tracing } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { PUBLIC_ENTRY } from '../../shared/config/self-reference.ts';
import { entries, lockFile, projectRoot } from '../paths.ts';

/** Where a function's ENIs live when the database is private. */
export interface FunctionNetwork {
  readonly vpc: IVpc;
  readonly vpcSubnets: SubnetSelection;
  readonly securityGroups: ISecurityGroup[];
}

export interface DroploadFunctionProps {
  /** Which handler in functions/ to bundle; also the Powertools service name suffix. */
  readonly name: keyof typeof entries;
  readonly description: string;
  /** Explicit on purpose: memory buys CPU for parsing, and the queues' visibility timeouts derive from timeout. */
  readonly memorySize: number;
  readonly timeout: Duration;
  readonly environment: Record<string, string>;
  /** Absolute path of the dataset config module to bundle as `#dropload-config`. */
  readonly configModule: string;
  readonly logLevel: string;
  readonly logRetention: RetentionDays;
  readonly network?: FunctionNetwork;
  /**
   * Why the function needs no dead-letter queue of its own, for cdk-nag. Default: it is never invoked
   * asynchronously (SQS redrive policies, or the synchronous deploy trigger, own its failures).
   */
  readonly noDlqReason?: string;
}

/** Packages the handlers only load for local runs; esbuild must not follow them into the Lambda bundle. */
export const LOCAL_ONLY_MODULES = [
  'pg-native',
  '@electric-sql/pglite',
  '@electric-sql/pglite-socket',
  'fauxqs',
];

/**
 * Node flags every handler runs with. A young generation of 8 MiB semi-spaces (what V8 picks for a
 * 1 GiB machine, where a roomy one picks up to 64 MiB) keeps a load worker's peak RSS under 256 MiB
 * on any file at no measured cost in speed; `npm run bench` runs split and load workers with the same flags.
 */
export const HANDLER_NODE_OPTIONS = ['--enable-source-maps', '--max-semi-space-size=8'];

/**
 * A function's NODE_OPTIONS: the handlers' flags and the old generation's limit Lambda's runtime would
 * have set. The nodejs24.x runtime's bootstrap sets `--max-semi-space-size` (memory / 20) and
 * `--max-old-space-size` (memory − memory / 10) on its own command line only when NODE_OPTIONS names
 * neither; naming one, as HANDLER_NODE_OPTIONS does, leaves the other at V8's default for the memory
 * Node sees (half of it up to 2 GB, not 90%). So both are given: the semi-spaces ours, the old
 * generation the runtime's.
 */
export function handlerNodeOptions(memoryMB: number): string {
  const oldSpaceMB = memoryMB - Math.floor(memoryMB / 10);
  return [...HANDLER_NODE_OPTIONS, `--max-old-space-size=${oldSpaceMB}`].join(' ');
}

/** Namespace of the Powertools (EMF) metrics the handlers publish; the dashboard reads it. */
export const METRICS_NAMESPACE = 'dropload';

// esbuild emits ESM, but pg and parts of the AWS SDK still call require(): give them one.
const REQUIRE_SHIM =
  "import { createRequire } from 'module'; const require = createRequire(import.meta.url);";

/**
 * The one place the Lambda settings live: every dropload handler is a NodejsFunction bundled
 * locally by esbuild (no Docker), on the newest Node runtime, arm64, traced, with its own log group.
 */
export class DroploadFunction extends Construct {
  readonly handler: NodejsFunction;
  readonly logGroup: LogGroup;
  readonly serviceName: string;

  constructor(scope: Construct, id: string, props: DroploadFunctionProps) {
    super(scope, id);
    this.serviceName = `dropload-${props.name}`;

    // An explicit log group (instead of the implicit /aws/lambda/… one) so retention is set and it goes away with the stack.
    this.logGroup = new LogGroup(this, 'Logs', {
      retention: props.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });

    // The handlers import the dataset config as `#dropload-config` and the config imports 'dropload':
    // both are bound here, to the app's config module and to this copy's public entry, wherever they live.
    const esbuildArgs: Record<string, string> = {
      '--alias:#dropload-config': props.configModule,
      '--alias:dropload': PUBLIC_ENTRY,
    };

    this.handler = new NodejsFunction(this, 'Handler', {
      entry: entries[props.name],
      handler: 'handler',
      description: props.description,
      runtime: Runtime.NODEJS_24_X,
      architecture: Architecture.ARM_64,
      memorySize: props.memorySize,
      timeout: props.timeout,
      tracing: Tracing.ACTIVE,
      logGroup: this.logGroup,
      projectRoot,
      depsLockFilePath: lockFile,
      ...(props.network ?? {}),
      environment: {
        NODE_OPTIONS: handlerNodeOptions(props.memorySize),
        POWERTOOLS_SERVICE_NAME: this.serviceName,
        POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
        POWERTOOLS_LOG_LEVEL: props.logLevel,
        ...props.environment,
      },
      bundling: {
        format: OutputFormat.ESM,
        target: 'node24',
        mainFields: ['module', 'main'],
        banner: REQUIRE_SHIM,
        minify: true,
        sourceMap: true,
        // Bundle the SDK rather than use the runtime's copy, so the deployed version is the locked one.
        bundleAwsSDK: true,
        externalModules: LOCAL_ONLY_MODULES,
        esbuildArgs,
      },
    });

    const managed = (name: string) =>
      `AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/${name}]`;
    const role = this.handler.role;
    if (role) {
      Validations.of(role).acknowledge(
        {
          id: managed('AWSLambdaBasicExecutionRole'),
          reason:
            'AWS-maintained logs-only policy (CreateLogGroup/CreateLogStream/PutLogEvents) for the function.',
        },
        {
          id: 'AwsSolutions-IAM5[Resource::*]',
          reason:
            'X-Ray PutTraceSegments/PutTelemetryRecords (active tracing) support no resource-level permissions.',
        },
      );
      if (props.network) {
        Validations.of(role).acknowledge({
          id: managed('AWSLambdaVPCAccessExecutionRole'),
          reason: 'AWS-maintained ENI-management policy Lambda needs to attach the function to the VPC.',
        });
      }
    }

    // SQS-driven handlers keep failed messages in their source queue's DLQ (redrive policy);
    // the migrate handler is invoked synchronously by the deploy. A function-level DLQ only
    // applies to asynchronous invocations, which none of these receive.
    Validations.of(this.handler).acknowledge({
      id: 'Serverless-LambdaDLQ',
      reason:
        props.noDlqReason ??
        'Never invoked asynchronously: SQS redrive policies (or the synchronous deploy trigger) own failures.',
    });
  }
}
