import { CONSUMERS } from '../shared/core/topology.ts';

// What loading costs on AWS, from what the benchmark measured: CPU seconds and wall seconds of the
// split and load steps, and their requests, priced at the list prices below (the README says where
// each comes from). The user's own upload of the file (a PUT Snowpipe needs as well) is left out.

/** us-east-1 list prices as published on PRICES.date. */
export const PRICES = {
  date: '2026-11-27',
  region: 'us-east-1',
  /** Lambda, x86, first tier. */
  lambdaGbSecond: 0.0000166667,
  lambdaRequest: 0.2 / 1e6,
  /** SQS standard queue, per request (a message under 64 KB). */
  sqsRequest: 0.4 / 1e6,
  /** S3 Standard: GET and HEAD, PUT. */
  s3Get: 0.0004 / 1000,
  s3Put: 0.005 / 1000,
  /** Snowflake Standard edition, on demand, AWS US East. */
  snowflakeCredit: 2.0,
  /** Snowpipe since 2025-12-08: credits per GB of uncompressed text, no per-file charge. */
  snowpipeCreditsPerGb: 0.0037,
  /** Snowpipe before: 0.06 credits per 1,000 files on top of its compute. */
  snowpipeFormerCreditsPerThousandFiles: 0.06,
};

/** Lambda gives a function one full vCPU at 1,769 MB and a proportional share below it. */
const FULL_VCPU_MB = 1769;

/** One Lambda step as measured here (on a full core): wall and CPU seconds, and the function's memory. */
export interface StepUse {
  wallSeconds: number;
  cpuSeconds: number;
  memoryMB: number;
}

/** Billed GB-seconds: the CPU part of the wall time stretches by the function's share of a vCPU. */
export function gbSeconds(step: StepUse): number {
  const share = Math.min(1, step.memoryMB / FULL_VCPU_MB);
  const waiting = Math.max(0, step.wallSeconds - step.cpuSeconds);
  return (waiting + step.cpuSeconds / share) * (step.memoryMB / 1024);
}

export interface LoadUse {
  files: number;
  chunks: number;
  split: StepUse;
  load: StepUse;
}

export interface Cost {
  lambda: number;
  sqs: number;
  s3: number;
  total: number;
}

/**
 * Requests per file: the S3 event on the ingest queue (send, receive, delete) and one split invocation
 * with its HEAD and GET; the chunk messages sent, received and deleted ten to a request, one load
 * invocation per batch of them (CONSUMERS.chunks), a ranged GET per chunk, and the receipt's PUT.
 */
export function awsCost(use: LoadUse): Cost {
  const p = PRICES;
  const chunksPerFile = use.chunks / use.files;
  const batches = use.files * Math.ceil(chunksPerFile / CONSUMERS.chunks.batchSize);
  const tens = use.files * Math.ceil(chunksPerFile / 10);
  const invocations = use.files + batches;
  const lambda =
    (gbSeconds(use.split) + gbSeconds(use.load)) * p.lambdaGbSecond + invocations * p.lambdaRequest;
  const sqs = (use.files * 3 + tens * 3) * p.sqsRequest;
  const s3 = (use.files * 2 + use.chunks) * p.s3Get + use.files * p.s3Put;
  return { lambda, sqs, s3, total: lambda + sqs + s3 };
}

/** Snowpipe for the same bytes and files: today's per-GB price, and the former per-file overhead. */
export function snowpipeCost(gb: number, files: number): { perGb: number; formerFileOverhead: number } {
  const p = PRICES;
  return {
    perGb: gb * p.snowpipeCreditsPerGb * p.snowflakeCredit,
    formerFileOverhead: (files / 1000) * p.snowpipeFormerCreditsPerThousandFiles * p.snowflakeCredit,
  };
}

const usd = (n: number) => `$${n < 0.01 ? n.toFixed(5) : n.toFixed(4)}`;

/** The lines `npm run bench` prints. */
export function costLines(oneGb: LoadUse, smallFiles: LoadUse, smallFileGb: number): string[] {
  const big = awsCost(oneGb);
  const small = awsCost(smallFiles);
  const pipeBig = snowpipeCost(1, oneGb.files);
  const pipeSmall = snowpipeCost(smallFileGb, smallFiles.files);
  const parts = (c: Cost) => `Lambda ${usd(c.lambda)}, SQS ${usd(c.sqs)}, S3 ${usd(c.s3)}`;
  return [
    `cost on AWS (${PRICES.region} list prices of ${PRICES.date}; Lambda x86, split and load at ${CONSUMERS.ingest.memoryMB} / ${CONSUMERS.chunks.memoryMB} MB):`,
    `  1 GB CSV: ${usd(big.total)} (${parts(big)}; ${oneGb.chunks} chunks); Snowpipe ${usd(pipeBig.perGb)} (0.0037 credits/GB at $${PRICES.snowflakeCredit}/credit)`,
    `  ${smallFiles.files.toLocaleString('en-US')} small files: ${usd(small.total)} (${parts(small)}); Snowpipe ${usd(pipeSmall.perGb)} per GB today, ${usd(pipeSmall.formerFileOverhead)} in per-file charges before 2025-12-08 (plus its compute)`,
  ];
}
