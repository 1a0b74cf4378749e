import { Duration, Validations } from 'aws-cdk-lib';
import {
  Alarm,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  type IMetric,
  MathExpression,
  TextWidget,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { type DroploadFunction, METRICS_NAMESPACE } from './dropload-function.ts';
import type { QueueWithDlq } from './queue-with-dlq.ts';

export interface MonitoredQueue {
  /** Short label used in alarm names and the dashboard ("ingest", "chunk"). */
  readonly label: string;
  readonly queues: QueueWithDlq;
  /** Age of the oldest message that means the consumer has fallen behind. */
  readonly maxAge: Duration;
}

export interface MonitoringProps {
  readonly queues: MonitoredQueue[];
  readonly functions: DroploadFunction[];
  readonly alarmEmail?: string;
}

const PERIOD = Duration.minutes(5);

/** Alarms to an SNS topic, and one dashboard for the pipeline's health and throughput. */
export class Monitoring extends Construct {
  readonly topic: Topic;
  readonly dashboard: Dashboard;
  readonly alarms: Alarm[] = [];

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);

    this.topic = new Topic(this, 'Alarms', { displayName: 'dropload alarms', enforceSSL: true });
    Validations.of(this.topic).acknowledge({
      id: 'AwsSolutions-SNS2',
      reason:
        'Alarm notifications carry no data; CloudWatch cannot publish to the AWS-managed SNS key and a CMK costs more than it protects.',
    });
    if (props.alarmEmail) {
      // The subscription is created inside the topic, so acknowledging on the topic covers it.
      this.topic.addSubscription(new EmailSubscription(props.alarmEmail));
      Validations.of(this.topic).acknowledge({
        id: 'Serverless-SNSRedrivePolicy',
        reason: 'Email subscription to a human: undeliverable alarm emails are not worth a DLQ.',
      });
    }
    const notify = new SnsAction(this.topic);
    const alarm = (alarmId: string, props: ConstructorParameters<typeof Alarm>[2]): void => {
      const a = new Alarm(this, alarmId, { treatMissingData: TreatMissingData.NOT_BREACHING, ...props });
      a.addAlarmAction(notify);
      a.addOkAction(notify);
      this.alarms.push(a);
    };

    for (const { label, queues, maxAge } of props.queues) {
      // Anything in a DLQ is a file or chunk that failed every retry: a human has to look.
      alarm(`${label}DlqNotEmpty`, {
        alarmDescription: `Messages in the ${label} dead-letter queue: inspect, fix, then redrive (docs/deploy.md).`,
        metric: queues.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
          period: PERIOD,
          statistic: 'Maximum',
        }),
        threshold: 0,
        comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
      });
      alarm(`${label}Backlog`, {
        alarmDescription: `The oldest ${label} message is older than ${maxAge.toHumanString()}: consumers are stuck or too slow.`,
        metric: queues.queue.metricApproximateAgeOfOldestMessage({ period: PERIOD, statistic: 'Maximum' }),
        threshold: maxAge.toSeconds(),
        comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 2,
      });
    }

    for (const fn of props.functions) {
      const name = fn.node.id;
      // Errors are unhandled failures (crash, timeout); per-record failures are reported to SQS instead.
      alarm(`${name}Errors`, {
        alarmDescription: `${fn.serviceName} invocations failed (crash or timeout); see its log group.`,
        metric: fn.handler.metricErrors({ period: PERIOD, statistic: 'Sum' }),
        threshold: 0,
        comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
      });
      // maxConcurrency keeps the event sources under the function's share, so throttling means account-level pressure.
      alarm(`${name}Throttles`, {
        alarmDescription: `${fn.serviceName} was throttled: account concurrency is exhausted.`,
        metric: fn.handler.metricThrottles({ period: PERIOD, statistic: 'Sum' }),
        threshold: 0,
        comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
      });
    }

    this.dashboard = new Dashboard(this, 'Dashboard', {
      defaultInterval: Duration.hours(6),
      widgets: [
        [
          new TextWidget({
            markdown:
              '# dropload\nFiles dropped into the ingest bucket → split → chunk queue → load → PostgreSQL. ' +
              'Pipeline metrics are Powertools EMF metrics in the `dropload` namespace.',
            width: 24,
            height: 2,
          }),
        ],
        [
          graph('Files', [
            emf('FilesLoaded', 'Sum', 'files loaded'),
            emf('FilesFailed', 'Sum', 'files failed'),
          ]),
          graph('Rows', [
            emf('RowsLoaded', 'Sum', 'rows loaded'),
            emf('RowsRejected', 'Sum', 'rows rejected'),
          ]),
          graph('Chunk latency (ms)', [
            emf('ChunkLatencyMs', 'p50', 'p50'),
            emf('ChunkLatencyMs', 'p90', 'p90'),
            emf('ChunkLatencyMs', 'Maximum', 'max'),
          ]),
        ],
        [
          graph(
            'Queue depth (visible)',
            props.queues.flatMap(({ label, queues }) => [
              queues.queue.metricApproximateNumberOfMessagesVisible({ period: PERIOD, label }),
              queues.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
                period: PERIOD,
                label: `${label} DLQ`,
              }),
            ]),
          ),
          graph(
            'In flight',
            props.queues.map(({ label, queues }) =>
              queues.queue.metricApproximateNumberOfMessagesNotVisible({ period: PERIOD, label }),
            ),
          ),
          graph(
            'Age of oldest message (s)',
            props.queues.map(({ label, queues }) =>
              queues.queue.metricApproximateAgeOfOldestMessage({ period: PERIOD, label }),
            ),
          ),
        ],
        [
          graph(
            'Function errors / throttles',
            props.functions.flatMap((fn) => [
              fn.handler.metricErrors({ period: PERIOD, label: `${fn.node.id} errors` }),
              fn.handler.metricThrottles({ period: PERIOD, label: `${fn.node.id} throttles` }),
            ]),
          ),
          graph(
            'Function duration p90 (ms)',
            props.functions.map((fn) =>
              fn.handler.metricDuration({ period: PERIOD, statistic: 'p90', label: fn.node.id }),
            ),
          ),
          graph(
            'Concurrent executions',
            props.functions.map((fn) =>
              fn.handler.metric('ConcurrentExecutions', {
                period: PERIOD,
                statistic: 'Maximum',
                label: fn.node.id,
              }),
            ),
          ),
        ],
      ],
    });
  }
}

function graph(title: string, left: IMetric[]): GraphWidget {
  return new GraphWidget({ title, left, width: 8, height: 6 });
}

/**
 * A Powertools metric, whichever function emits it: SEARCH over the `service` dimension
 * keeps the dashboard right if a handler's service name changes.
 */
function emf(metricName: string, statistic: string, label: string): IMetric {
  return new MathExpression({
    expression: `SEARCH('{${METRICS_NAMESPACE},service} MetricName="${metricName}"', '${statistic}', ${PERIOD.toSeconds()})`,
    label,
    period: PERIOD,
    usingMetrics: {},
  });
}
