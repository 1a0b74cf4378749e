import type { Kysely } from 'kysely';
import { middleEllipsis } from '../shared/core/text.ts';
import {
  getFile,
  listFiles,
  newerVersion,
  rejectsOf,
  type TableCounts,
  tableCountsOf,
} from '../shared/ledger/ledger.ts';
import { openCounts } from '../shared/ledger/rejects.ts';
import { type Resumed, resumedOf, resumedText } from '../shared/ledger/resumes.ts';
import { type Database, type FileRow, WAITING_STATES } from '../shared/ledger/schema.ts';
import { readSnapshot } from '../shared/ledger/snapshot.ts';
import { type Waiting, type WaitSummary, waitingPart, waitSummaries } from '../shared/ledger/waiting.ts';
import { fileAction } from '../shared/pipeline/receipts.ts';

export interface FileReport {
  key: string;
  dataset: string | null;
  state: FileRow['state'] | 'queued';
  chunks: { done: number; total: number | null };
  rows: {
    /** read = inserted + updated + unchanged + waiting + rejected, each the ledger's own counter. */
    read: number;
    /** inserted + updated + unchanged: in the table; a waiting record is not loaded. */
    loaded: number;
    inserted: number;
    updated: number;
    unchanged: number;
    /** Records (lines) with rows waiting for their parents. */
    waiting: number;
    rejected: number;
    /** Of the rejected rows, those no retry, newer row or operator has resolved yet. */
    open: number;
  };
  seconds: number | null;
  error: string | null;
  /** Something about the file or this run a person should know (ignored columns, a version already loaded). */
  note?: string;
  /** What to run to move a stalled file on, once its cause is fixed; what to do about a failed one. */
  action?: string;
  /** Its work stopped without an outcome (a crash) and started again: how often, when, the idle time. */
  resumed?: Resumed;
  /**
   * A failed file some rows of which loaded: the newer version of its key that has loaded since, and what
   * it wrote (its `updated`: rows whose keys were in the table, this version's among them on an upsert).
   */
  newer?: Newer;
  /**
   * Rows of it that wait for their parents: how many (and the records, lines, they belong to: not
   * counted as loaded) and what for, per parent table (with its key columns).
   */
  waiting?: Waiting;
  /** A multi-table dataset's file: rows per target table (its `rows` count records). */
  tables?: TableReport[];
  rejects: { line: number; column: string | null; reason: string }[];
}

export type TableReport = { table: string } & TableCounts;

export interface Newer {
  fileId: number;
  inserted: number;
  updated: number;
  unchanged: number;
}

/**
 * `waits`: what of the file waits for parents; `open`: its open rejects, counted by the caller (taken as
 * all of them when not given: progress lines).
 */
export function reportOf(
  file: FileRow,
  rejects: FileReport['rejects'] = [],
  {
    waits,
    open = file.rows_rejected,
    tables,
    newer,
  }: { waits?: WaitSummary; open?: number; tables?: TableReport[]; newer?: Newer } = {},
): FileReport {
  const end = file.finished_at ?? new Date();
  const resumed = resumedOf(file);
  const action = fileAction(file);
  return {
    key: file.key,
    dataset: file.dataset,
    state: file.state,
    chunks: { done: file.chunks_done, total: file.chunk_count },
    rows: {
      read: file.rows_read,
      // Summed from the stored counters, never read less the others: a waiting record is not loaded.
      loaded: file.rows_inserted + file.rows_updated + file.rows_unchanged,
      inserted: file.rows_inserted,
      updated: file.rows_updated,
      unchanged: file.rows_unchanged,
      waiting: file.rows_waiting,
      rejected: file.rows_rejected,
      open,
    },
    seconds: Math.round((end.getTime() - file.created_at.getTime()) / 100) / 10,
    error: file.error,
    ...(file.note ? { note: file.note } : {}),
    ...(action ? { action } : {}),
    ...(resumed ? { resumed } : {}),
    ...(newer ? { newer } : {}),
    ...(waits ? { waiting: waitingPart(waits) } : {}),
    ...(tables && tables.length > 0 ? { tables } : {}),
    rejects,
  };
}

/** `nw.shippers 3 inserted, 0 updated, 824 unchanged` */
export function tableLine(t: TableReport): string {
  return `${t.table} ${t.inserted} inserted, ${t.updated} updated, ${t.unchanged} unchanged`;
}

/**
 * `53 rows wait for nw.regions (region_id)`, or `… for nw.regions (region_id), 2 for nw.x (k)` for
 * several parents; then the missing roots of chains of waiting parents, if any.
 */
export function waitingLine(waiting: Waiting): string {
  const verb = waiting.rows === 1 ? 'row waits' : 'rows wait';
  const parents = waiting.on.map((w) => `${w.table} (${w.key})`);
  const on =
    waiting.on.length === 1
      ? `${waiting.rows} ${verb} for ${parents[0]}`
      : `${waiting.rows} ${verb}: ${waiting.on.map((w, i) => `${w.rows} for ${parents[i]}`).join(', ')}`;
  return on + rootsText(waiting);
}

/** `; waiting parents lead to the missing root: orr.employees row with employee_id = 2` */
function rootsText({ roots = [], moreRoots }: Waiting): string {
  if (roots.length === 0) return '';
  const noun = roots.length === 1 && !moreRoots ? 'root' : 'roots';
  return `; waiting parents lead to the missing ${noun}: ${roots.join('; ')}${moreRoots ? '; and others' : ''}`;
}

export function queuedReport(key: string): FileReport {
  return {
    key,
    dataset: null,
    state: 'queued',
    chunks: { done: 0, total: null },
    rows: { read: 0, loaded: 0, inserted: 0, updated: 0, unchanged: 0, waiting: 0, rejected: 0, open: 0 },
    seconds: null,
    error: null,
    rejects: [],
  };
}

/** A file's report with its first `limit` rejects: its row read again, with its counts, in one snapshot. */
export async function withRejects(
  db: Kysely<Database>,
  file: FileRow,
  limit: number,
  waits?: WaitSummary,
): Promise<FileReport> {
  return readSnapshot(db, async (snap) => {
    const now = (await getFile(snap, file.id)) ?? file;
    const rejects = await rejectsOf(snap, now.id, limit);
    const open = (await openCounts(snap, [now.id])).get(now.id) ?? 0;
    const tables = (await tableCountsOf(snap, [now.id])).get(now.id);
    const newer = (await newerLoaded(snap, [now])).get(now.id);
    return reportOf(
      now,
      rejects.map((r) => ({ line: r.line, column: r.column, reason: r.reason })),
      { waits, open, tables, newer },
    );
  });
}

/** `dropload status`: the newest files, each with its open rejects counted, all of one snapshot. */
export async function statusReports(db: Kysely<Database>, limit: number): Promise<FileReport[]> {
  return readSnapshot(db, async (snap) => reportsOf(snap, await listFiles(snap, limit)));
}

/**
 * The files as `status` shows them: each with its open rejects counted and what its rows wait for. Read
 * in the snapshot the files were (`readSnapshot`), or the counts may be newer than the rows.
 */
export async function reportsOf(db: Kysely<Database>, files: FileRow[]): Promise<FileReport[]> {
  const open = await openCounts(
    db,
    files.map((f) => f.id),
  );
  const waits = await waitSummaries(
    db,
    files.filter((f) => WAITING_STATES.includes(f.state)).map((f) => f.id),
  );
  const tables = await tableCountsOf(
    db,
    files.map((f) => f.id),
  );
  const newer = await newerLoaded(db, files);
  return files.map((f) =>
    reportOf(f, [], {
      waits: waits.find((w) => w.fileId === f.id),
      open: open.get(f.id) ?? 0,
      tables: tables.get(f.id),
      newer: newer.get(f.id),
    }),
  );
}

/**
 * For each failed file some rows of which loaded, the newer version of its key that has loaded since:
 * what it wrote over the same keys decides which of the failed file's rows remain (its to-do says how).
 */
async function newerLoaded(db: Kysely<Database>, files: FileRow[]): Promise<Map<number, Newer>> {
  const found = new Map<number, Newer>();
  for (const f of files.filter((f) => f.state === 'failed' && f.rows_inserted + f.rows_updated > 0)) {
    const version = await newerVersion(db, f.id, ['loaded']);
    const row = version && (await getFile(db, version.id));
    if (row)
      found.set(f.id, {
        fileId: row.id,
        inserted: row.rows_inserted,
        updated: row.rows_updated,
        unchanged: row.rows_unchanged,
      });
  }
  return found;
}

/**
 * The widest a cell of the terminal table gets: the key (whose both ends tell files apart) and the
 * dataset are cut in the middle, so one 1,024-character key does not pad every other row to its width.
 * `--json` keeps every value whole.
 */
const CELL_MAX = { key: 80, other: 40 };

function pad(text: string, width: number): string {
  return text.length >= width ? text : text + ' '.repeat(width - text.length);
}

/** What the file's error means for it: final, waiting for a person, or being retried. */
function errorLabel(state: FileReport['state']): string {
  if (state === 'failed') return 'FAILED';
  if (state === 'stalled') return 'STALLED';
  if (state === 'skipped') return 'skipped';
  return 'retrying';
}

/**
 * What `status` says under its table about a file, line by line: its note, its error, the command that
 * moves it on, its resumes after interruptions, what its rows wait for. `gap`: a blank line goes before
 * it (the command follows its error).
 */
export function fileNotes(r: FileReport): { line: string; gap: boolean }[] {
  const notes: { line: string; gap: boolean }[] = [];
  if (r.note) notes.push({ line: `${r.key}: note: ${r.note}`, gap: true });
  if (r.error) notes.push({ line: `${r.key}: ${errorLabel(r.state)}: ${r.error}`, gap: true });
  if (r.action) {
    const line = r.state === 'stalled' ? `once the cause is fixed, run: ${r.action}` : `to do: ${r.action}`;
    notes.push({ line: `${r.key}: ${line}`, gap: false });
  }
  if (r.newer) {
    const n = r.newer;
    const wrote = `${n.inserted} inserted, ${n.updated} updated, ${n.unchanged} unchanged`;
    notes.push({
      line: `${r.key}: a newer version of its key has loaded since (file ${n.fileId}: ${wrote})`,
      gap: false,
    });
  }
  if (r.resumed && r.seconds !== null)
    notes.push({ line: `${r.key}: ${resumedText(r.resumed, r.seconds, r.state)}`, gap: true });
  if (r.waiting) notes.push({ line: `${r.key}: waiting: ${waitingLine(r.waiting)}`, gap: true });
  // One table's counts are the file's own, said on its line already (a dataset with foreign keys counts them too).
  if (r.tables && r.tables.length > 1)
    notes.push({ line: `${r.key}: rows per table: ${r.tables.map(tableLine).join('; ')}`, gap: true });
  return notes;
}

/** A table a person reads: one line per file, then the first rejects and any file-level error. */
export function renderReports(reports: FileReport[]): string {
  const header = [
    'file',
    'dataset',
    'state',
    'chunks',
    'read',
    'loaded',
    'waiting',
    'rejected',
    'open',
    'seconds',
  ];
  const rows = reports.map((r) => [
    middleEllipsis(r.key, CELL_MAX.key),
    middleEllipsis(r.dataset ?? '-', CELL_MAX.other),
    r.state,
    `${r.chunks.done}/${r.chunks.total ?? '?'}`,
    String(r.rows.read),
    String(r.rows.loaded),
    String(r.rows.waiting),
    String(r.rows.rejected),
    String(r.rows.open),
    r.seconds === null ? '-' : r.seconds.toFixed(1),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const lines = [header, ...rows].map((row) =>
    row
      .map((c, i) => pad(c, widths[i] ?? 0))
      .join('  ')
      .trimEnd(),
  );
  for (const r of reports) {
    for (const n of fileNotes(r)) lines.push(...(n.gap ? ['', n.line] : [n.line]));
    if (r.rejects.length > 0) {
      lines.push('', `${r.key}: first ${r.rejects.length} of ${r.rows.rejected} rejected rows:`);
      for (const j of r.rejects)
        lines.push(`  line ${j.line}${j.column ? `, column "${j.column}"` : ''}: ${j.reason}`);
    }
  }
  return lines.join('\n');
}
