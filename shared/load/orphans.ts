import type { Transaction } from 'kysely';
import type { OrphanMessage } from '../aws/messages.ts';
import type { TargetsDataset } from '../config/dataset.ts';
import type { Reject } from '../ledger/ledger.ts';
import {
  getFile,
  insertRejects,
  lockFile,
  moveCounts,
  moveTableCounts,
  recordFileAttempt,
} from '../ledger/ledger.ts';
import { type Database, type FileRow, type ParentRow, WAITING_STATES } from '../ledger/schema.ts';
import {
  type ClaimedRow,
  claimWaiting,
  countAttempt,
  dropWaiting,
  finishIfDone,
  missingRoot,
  noteMissing,
  parkRows,
  takeRetry,
  type Wait,
  waitingCount,
} from '../ledger/waiting.ts';
import type { PipelineDeps } from '../pipeline/services.ts';
import { rowsReadAgain } from './parked-before.ts';
import {
  continueChain,
  MAX_DELAY_SECONDS,
  orphanDelaySeconds,
  PARKED_RETRY_SECONDS,
  parentOf,
  tablesOf,
  wakeWaiting,
} from './retry-chain.ts';
import { settleWaiting } from './waiting-counts.ts';
import { retryDataset } from './write/foreign-keys.ts';
import {
  decodeUnit,
  type JsonMarks,
  jsonMarksOf,
  type Orphan,
  orphanReason,
  parentRowOf,
  parkedBefore,
  type StoredRecord,
  type StoredRow,
  type Unit,
  writeUnits,
} from './write/relations.ts';

/**
 * Records that wait for a parent. A chunk parks each one, all its rows and nothing of it written, as
 * one row of `dropload.orphan` in its own transaction, with the parent table it waits on; a
 * `{ kind: 'orphans' }` message on the chunk queue retries them whole, claiming them `for update skip
 * locked` and deleting the ones it writes (or, past the dataset's `orphanWaitSeconds`, turns into
 * rejects) in one transaction. The file is `loaded` once its chunks are done and nothing waits. When
 * those messages are sent (at once when a parent lands, with backoff otherwise, by the sweep when one
 * was lost) is the retry chain's (`retry-chain.ts`); the table's queries are the ledger's
 * (`ledger/waiting.ts`); this module decides what happens to the records.
 */

/** What an orphan waits for, as the ledger records it: the parent row by the key its row names. */
const waitOf = (o: Orphan): Wait => ({
  missing: o.missing,
  ...parentOf(o.target.references, o.column),
  parentRow: parentRowOf(o),
});

export async function insertOrphans(
  trx: Transaction<Database>,
  fileId: number,
  orphans: Orphan[],
  waitSeconds: number,
): Promise<void> {
  const rows = orphans.map((o) => ({
    chunkIdx: o.unit.chunkIdx,
    line: o.unit.line,
    target: o.target.table,
    row: o.record,
    raw: o.unit.raw,
    ...waitOf(o),
  }));
  await parkRows(trx, fileId, rows, waitSeconds);
}

export interface OrphanOutcome {
  fileId: number;
  /** `retried`: this delivery claimed waiting rows; `busy`: another retry holds them; `none`: nothing waits. */
  result: 'retried' | 'busy' | 'none';
  resolved: number;
  expired: number;
  rejected: number;
  /** Rows of the file still waiting after this retry. */
  waiting: number;
  /** Records that waited and loaded in this retry, as the file counts them. */
  inserted: number;
  updated: number;
  unchanged: number;
  finishedFile?: FileRow;
  /** This message was of the file's current retry chain, which it then continued (if rows still wait). */
  current: boolean;
}

/** Records one reject per line (a record with several waiting rows is one rejected record), and its counts. */
async function rejectLines(
  trx: Transaction<Database>,
  fileId: number,
  rejects: (Reject & { chunkIdx: number })[],
) {
  if (rejects.length === 0) return 0;
  const already = await trx
    .selectFrom('dropload.reject')
    .select('line')
    .distinct()
    .where('file_id', '=', fileId)
    .where((eb) => eb('line', '=', eb.fn.any(eb.val(rejects.map((r) => r.line)))))
    .execute();
  const seen = new Set(already.map((r) => Number(r.line)));
  const byChunk = new Map<number, Reject[]>();
  for (const r of rejects) {
    if (seen.has(r.line)) continue;
    seen.add(r.line);
    const list = byChunk.get(r.chunkIdx) ?? [];
    list.push({ line: r.line, column: r.column, kind: r.kind, reason: r.reason, raw: r.raw });
    byChunk.set(r.chunkIdx, list);
  }
  let total = 0;
  for (const [idx, list] of byChunk) {
    await insertRejects(trx, fileId, idx, list);
    // Each was a waiting record of its chunk (a line already rejected is skipped above, as it was not).
    await moveCounts(trx, { fileId, chunkIdx: idx }, { rejected: list.length, waiting: -list.length });
    total += list.length;
  }
  return total;
}

/**
 * `missingRoot`, followed once per parent row in one retry: the records that expire behind one parent
 * (a manager's many reports) cost one recursive query, not one each. Only within the retry's
 * transaction, whose claimed rows no other retry changes meanwhile.
 */
function rootsOnce(
  trx: Transaction<Database>,
): (parent: ParentRow | undefined) => Promise<string | undefined> {
  const roots = new Map<string, Promise<string | undefined>>();
  return (parent) => {
    if (!parent) return Promise.resolve(undefined);
    // `parentRowOf` builds the key in the order of the reference's columns: one text per parent row.
    const key = JSON.stringify(parent);
    const root = roots.get(key) ?? missingRoot(trx, parent);
    roots.set(key, root);
    return root;
  };
}

async function retryIn(
  trx: Transaction<Database>,
  dataset: TargetsDataset,
  fileId: number,
): Promise<Omit<OrphanOutcome, 'current'> & { nextInSeconds?: number; movedOn?: boolean }> {
  const none = { fileId, resolved: 0, expired: 0, rejected: 0, inserted: 0, updated: 0, unchanged: 0 };
  const parked = await claimWaiting(trx, fileId);
  if (parked.length === 0) {
    const waiting = await waitingCount(trx, fileId);
    if (waiting > 0) return { ...none, result: 'busy', waiting };
    return { ...none, result: 'none', waiting: 0, finishedFile: await finishIfDone(trx, fileId) };
  }
  const targets = dataset.targets;
  const rejects: (Reject & { chunkIdx: number })[] = [];
  const gone = new Set<number>();
  const units: Unit[] = [];
  // Read once, and only when an NDJSON dataset has a record parked by older code.
  let marks: JsonMarks[] | undefined;
  for (const p of parked) {
    const stored = (typeof p.row === 'string' ? JSON.parse(p.row) : p.row) as StoredRecord | StoredRow;
    // The whole record, written through `writeUnits` again: all of it or none.
    const decoded = decodeUnit(targets, p.target, stored);
    if ('gone' in decoded) {
      const reason = `orphan: its table ${decoded.gone} is no longer a target of dataset ${dataset.name}`;
      rejects.push({ line: p.line, column: null, kind: 'orphan', reason, raw: p.raw, chunkIdx: p.chunk_idx });
      gone.add(p.id);
      continue;
    }
    let rows = decoded.rows;
    if (dataset.format === 'ndjson' && parkedBefore(stored)) {
      marks ??= await jsonMarksOf(trx, dataset);
      if (marks.some((m) => m.jsonStrings || m.refJsonStrings))
        rows = rowsReadAgain(dataset, marks, p) ?? rows;
    }
    units.push({ line: p.line, raw: p.raw, chunkIdx: p.chunk_idx, orphanId: p.id, rows });
  }
  const written = await writeUnits(trx, dataset, units);
  const byId = new Map(parked.map((p) => [p.id, p]));
  for (const { unit, reject } of written.rejects) {
    rejects.push({ ...reject, chunkIdx: unit.chunkIdx });
    gone.add(unit.orphanId as number);
  }
  const stillWaiting = new Map<number, Orphan>();
  for (const o of written.orphans) stillWaiting.set(o.unit.orphanId as number, o);
  const rootOf = rootsOnce(trx);
  let expired = 0;
  const keep: number[] = [];
  let movedOn = false;
  for (const [id, o] of stillWaiting) {
    const p = byId.get(id) as ClaimedRow;
    if (p.expired) {
      expired++;
      gone.add(id);
      const root = await rootOf(parentRowOf(o));
      const reason = `${orphanReason(o.missing, root)} (waited ${dataset.orphanWaitSeconds}s)`;
      rejects.push({
        line: p.line,
        column: o.column,
        kind: 'orphan',
        reason,
        raw: p.raw,
        chunkIdx: p.chunk_idx,
      });
    } else {
      keep.push(id);
      if (o.missing !== p.missing) {
        const wait = waitOf(o);
        // Waiting on another table now: that table's commit may have come while this retry read it,
        // and its wake looked for rows waiting on it, which these were not yet (see retryOrphans).
        movedOn ||= wait.parentTable !== p.parent_table;
        await noteMissing(trx, id, wait);
      }
    }
  }
  const resolved = units.filter(
    (u) => !stillWaiting.has(u.orphanId as number) && !gone.has(u.orphanId as number),
  );
  for (const u of resolved) gone.add(u.orphanId as number);
  await dropWaiting(trx, [...gone]);
  await countAttempt(trx, keep);
  const rejected = await rejectLines(trx, fileId, rejects);
  // Locks the file: a chunk of the same file committing now either sees these rows gone or is seen done.
  await lockFile(trx, fileId);
  // The records that wait no more leave `waiting` for what they became, on their chunks and the file.
  const chunks = [...new Set(parked.map((p) => p.chunk_idx))];
  const settled = await settleWaiting(trx, fileId, chunks, written);
  await moveTableCounts(trx, fileId, written.tables);
  const waiting = await waitingCount(trx, fileId);
  const finishedFile = waiting === 0 ? await finishIfDone(trx, fileId) : undefined;
  const nextIn = keep.map((id) => byId.get(id)?.seconds_left ?? 0);
  return {
    fileId,
    result: 'retried',
    resolved: resolved.length,
    expired,
    rejected,
    waiting,
    ...settled,
    finishedFile,
    nextInSeconds: keep.length > 0 ? Math.max(0, Math.min(...nextIn)) : undefined,
    movedOn,
  };
}

/**
 * Handles `{ kind: 'orphans' }`: one transaction retries the file's waiting rows. After it commits,
 * files waiting on the rows it wrote are woken, and, if the message is of the file's current chain,
 * the chain's next retry is scheduled (a stale message's retry stops there: chains never multiply).
 */
export async function retryOrphans(deps: PipelineDeps, message: OrphanMessage): Promise<OrphanOutcome> {
  const file = await getFile(deps.db, message.fileId);
  const none: OrphanOutcome = { ...emptyOutcome(message.fileId), result: 'none' };
  if (!file || !WAITING_STATES.includes(file.state)) return none;
  const token = message.token;
  const current = token !== undefined && (await takeRetry(deps.db, file.id, token));
  const next = message.attempt + 1;
  const dataset = deps.config.datasets.find((d) => d.name === file.dataset);
  if (!dataset) {
    // Not a failure to retry into the dead-letter queue: the rows wait for a config that has their dataset.
    const text = `its waiting rows cannot be retried: dataset "${file.dataset}" is not in this config`;
    await recordFileAttempt(deps.db, { id: file.id }, { text, parked: false });
    if (current) await continueChain(deps, file.id, token, next, MAX_DELAY_SECONDS);
    return { ...none, current };
  }
  const { nextInSeconds, movedOn, ...outcome } = await deps.db
    .transaction()
    .execute(async (trx) => retryIn(trx, await retryDataset(trx, dataset), file.id));
  if (outcome.resolved > 0) await wakeWaiting(deps, tablesOf(dataset), file.id);
  if (current) {
    // Back off, but come back when the first waiting row's time is up, to report it; and within a
    // second (PARKED_RETRY_SECONDS, as after a chunk parks rows) when rows now wait on another table,
    // or when another retry holds them: that one may have read before the commit that sent this one,
    // and its chain is no longer current, so no later step of it would look again.
    const soon = movedOn || outcome.result === 'busy';
    const backoff = soon
      ? Math.min(PARKED_RETRY_SECONDS, orphanDelaySeconds(next))
      : orphanDelaySeconds(next);
    const delay = nextInSeconds === undefined ? backoff : Math.min(backoff, nextInSeconds + 1);
    await continueChain(deps, file.id, token, next, delay);
  }
  return { ...outcome, current };
}

function emptyOutcome(fileId: number): Omit<OrphanOutcome, 'result'> {
  return {
    fileId,
    resolved: 0,
    expired: 0,
    rejected: 0,
    waiting: 0,
    inserted: 0,
    updated: 0,
    unchanged: 0,
    current: false,
  };
}
