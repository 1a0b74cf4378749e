/** Where dropload writes in the ingest bucket, outside every dataset prefix (so nothing it writes is loaded). */

/** Per-file receipts: `reports/<key>.json`. */
export const REPORT_PREFIX = 'reports/';

/** Decompressed copies of gzip files, read by the load workers with ranged GETs. */
export const EXPANDED_PREFIX = '.dropload/expanded/';
