import type { Kysely, Transaction } from 'kysely';
import type { ResolvedConfig } from '../config/config.ts';
import type { Dataset } from '../config/dataset.ts';
import { ConfigError } from '../core/errors.ts';
import { parseText } from '../formats/parsing.ts';
import { moveCounts, moveTableCounts, newerVersion } from '../ledger/ledger.ts';
import { resolveRejects } from '../ledger/rejects.ts';
import type { Database, FileRow } from '../ledger/schema.ts';
import { type ValidRow, validateRecords } from '../load/validation.ts';
import { lockKey, newerVersionName } from '../load/write/publish.ts';
import { writeDatasetRows } from '../load/write/relations.ts';
import type { Log } from '../pipeline/services.ts';
import { newestFileByKey, type RejectRow } from './rejects.ts';

export interface RetryDeps {
  db: Kysely<Database>;
  config: ResolvedConfig;
  logger: Log;
}

export interface RetryResult {
  fileId: number;
  key: string;
  /** Open rejects re-validated against the current schema. */
  retried: number;
  /** Of those, rows now written; their rejects are resolved (`retry`). */
  loaded: number;
  inserted: number;
  updated: number;
  /** Loaded rows the table had already as they are (loaded = inserted + updated + unchanged). */
  unchanged: number;
  stillRejected: number;
  /** Rejects whose stored text is not the original line (kind `unreadable`): left as they are. */
  notRetryable: number;
}

/**
 * Every reject but an `unreadable` one, whose `raw` is not the line as it was in the file and cannot be
 * re-read: the preview of an oversized or unterminated record, a line whose invalid UTF-8 was replaced
 * on decoding. Its kind says so, whatever its reason reads like.
 */
export function isRetryable(reject: Pick<RejectRow, 'kind'>): boolean {
  return reject.kind !== 'unreadable';
}

interface ChunkRetry {
  idx: number;
  /** Rejects whose line now passes the schema, by line. */
  candidates: Map<number, RejectRow>;
  rows: ValidRow[];
}

/**
 * Re-reads each stored line as the load did (same columns, same line number) and validates it again.
 * A Parquet row was stored as JSON, so it is read back as NDJSON: its timestamps are ISO text and its
 * 64-bit integers numbers, which a schema that coerces (`z.coerce.date()`) takes as the load did.
 */
function revalidate(dataset: Dataset, file: FileRow, rejects: RejectRow[]): ChunkRetry[] {
  const byChunk = new Map<number, ChunkRetry>();
  for (const reject of rejects) {
    const records = parseText(reject.raw, {
      format: dataset.format,
      delimiter: dataset.delimiter,
      quote: dataset.quote,
      columns: file.columns ?? undefined,
      firstLine: reject.line,
    });
    // A raw line is one record; anything else (a mangled quote) stays rejected.
    if (records.length !== 1) continue;
    const { rows } = validateRecords(dataset, records);
    const row = rows[0];
    if (!row) continue;
    let chunk = byChunk.get(reject.chunk_idx);
    if (!chunk) {
      chunk = { idx: reject.chunk_idx, candidates: new Map(), rows: [] };
      byChunk.set(reject.chunk_idx, chunk);
    }
    chunk.candidates.set(reject.line, reject);
    chunk.rows.push(row);
  }
  return [...byChunk.values()].sort((a, b) => a.idx - b.idx);
}

interface Counts {
  loaded: number;
  inserted: number;
  updated: number;
  unchanged: number;
}

/**
 * Writes one chunk's passing rows, resolves the rejects that loaded, and moves their counts over: the
 * rows now count as this file's inserted or updated ones, so they leave its rejected count (a resolved
 * reject stays as history; a file's `rows_rejected` is its rejects not resolved by a retry).
 */
async function loadChunkRetry(
  trx: Transaction<Database>,
  dataset: Dataset,
  fileId: number,
  chunk: ChunkRetry,
): Promise<Counts> {
  // Tagged with their file like the rows the load wrote, so a newer version's `replace` removes them too.
  const written = await writeDatasetRows(trx, dataset, chunk.rows, fileId);
  const refused = new Set(written.rejects.map((r) => r.line));
  const loadedIds = [...chunk.candidates.values()].filter((r) => !refused.has(r.line)).map((r) => r.id);
  await resolveRejects(trx, loadedIds, { by: 'retry', resolution: null });
  const counts = {
    loaded: loadedIds.length,
    inserted: written.inserted,
    updated: written.updated,
    unchanged: written.unchanged,
  };
  // loaded = inserted + updated + unchanged, as the writer counted them: the identity holds.
  await moveCounts(
    trx,
    { fileId, chunkIdx: chunk.idx },
    {
      inserted: counts.inserted,
      updated: counts.updated,
      unchanged: counts.unchanged,
      rejected: -counts.loaded,
    },
  );
  if (written.tables) await moveTableCounts(trx, fileId, written.tables);
  return counts;
}

/**
 * Retries a file's open rejected lines against the current config (after a schema fix) and loads the
 * ones that pass now. One transaction writes the rows, resolves their rejects and moves the counts,
 * with the open rejects locked first: a second or concurrent run finds those rejects resolved and loads
 * nothing twice. Rejects resolved otherwise (a newer row, an operator) are not retried.
 */
export async function retryRejects(deps: RetryDeps, key: string): Promise<RetryResult> {
  const result = await deps.db.transaction().execute(async (trx) => {
    const file = await newestFileByKey(trx, key);
    // A file still loading or failed as a whole (a quality gate, a vanished object) takes no late rows.
    if (file.state !== 'loaded') {
      throw new ConfigError(`file "${key}" is ${file.state}: retry-rejects needs a loaded file`);
    }
    const dataset = deps.config.datasets.find((d) => d.name === file.dataset);
    if (!dataset) {
      throw new ConfigError(`file "${key}" belongs to dataset "${file.dataset}", which is not in the config`);
    }
    if (dataset.kind === 'table' && dataset.onNewVersion === 'replace') {
      // In turn with the key's publishes: rows of a version a newer one has replaced stay out.
      await lockKey(trx, file);
      const newer = await newerVersion(trx, file.id, ['loaded']);
      if (newer) {
        throw new ConfigError(
          `file "${key}" was replaced by ${newerVersionName(file, newer)}: loading its rejects now would bring rows of an older version back`,
        );
      }
    }
    const rejects = await trx
      .selectFrom('dropload.reject')
      .selectAll()
      .where('file_id', '=', file.id)
      .where('resolved_at', 'is', null)
      .orderBy('line')
      .forUpdate()
      .execute();
    const retryable = rejects.filter(isRetryable);
    const total: Counts = { loaded: 0, inserted: 0, updated: 0, unchanged: 0 };
    for (const chunk of revalidate(dataset, file, retryable)) {
      const counts = await loadChunkRetry(trx, dataset, file.id, chunk);
      total.loaded += counts.loaded;
      total.inserted += counts.inserted;
      total.updated += counts.updated;
      total.unchanged += counts.unchanged;
    }
    return {
      fileId: file.id,
      key: file.key,
      retried: retryable.length,
      ...total,
      stillRejected: retryable.length - total.loaded,
      notRetryable: rejects.length - retryable.length,
    };
  });
  deps.logger.info('rejects retried', { ...result });
  return result;
}
