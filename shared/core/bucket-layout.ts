/** Where dropload writes in the ingest bucket, outside every dataset prefix (so nothing it writes is loaded). */

/** Per-file receipts: `reports/<key>.json`. */
export const REPORT_PREFIX = 'reports/';

/** dropload's own working area in the bucket. */
export const DROPLOAD_PREFIX = '.dropload/';

/** Decompressed copies of gzip files, read by the load workers with ranged GETs. */
export const EXPANDED_PREFIX = `${DROPLOAD_PREFIX}expanded/`;

/**
 * Every prefix dropload writes under (rejected rows are not among them: they live in the ledger,
 * `dropload.reject`). A dataset prefix that overlaps one would load dropload's own output as input:
 * receipts of receipts, in a loop. Refused by the config loader (CLI, runner, Lambdas) and at synth.
 */
export const RESERVED_PREFIXES: readonly string[] = [REPORT_PREFIX, DROPLOAD_PREFIX];

/**
 * Whether dropload wrote this key itself. The bucket announces every object (so that a file outside
 * every dataset prefix is seen and skipped), its receipts and expanded copies included: those are
 * ignored, never recorded, so a receipt never begets a receipt.
 */
export function isOwnKey(key: string): boolean {
  return RESERVED_PREFIXES.some((r) => key.startsWith(r));
}

/** The reserved prefix `prefix` is equal to, inside or contains, if any. */
export function reservedOverlap(prefix: string): string | undefined {
  return RESERVED_PREFIXES.find((r) => prefix.startsWith(r) || r.startsWith(prefix));
}

/** Why a dataset prefix is refused, when it overlaps a reserved one. */
export function reservedPrefixProblem(prefix: string): string | undefined {
  const reserved = reservedOverlap(prefix);
  if (reserved === undefined) return undefined;
  return `prefix "${prefix}" overlaps "${reserved}", where dropload writes (reserved: ${RESERVED_PREFIXES.join(', ')}); choose another prefix`;
}
