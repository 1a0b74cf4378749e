import { sqlType } from './column-type.ts';
import { type NextStep, nextHeader, type RunInputs, runCommands } from './next-step.ts';
import { count } from './plural.ts';
import { columnsOf, type Rejected, type Relationships } from './relationships.ts';
import type { InferredTable } from './tables.ts';

/** What `init` found and wrote, as `--json` prints it. */
/** A file the loader would refuse whole: no dataset or table is written for it. */
export interface RefusedFile {
  file: string;
  reason: string;
}

export interface InitSummary {
  tables: {
    name: string;
    file: string;
    rows: number;
    columns: { field: string; column: string; type: string; notNull: boolean; evidence: string }[];
    primaryKey: string[];
    keyEvidence: string;
    nullValues: string[];
    misfits: { line: number; reason: string; file?: string }[];
    /** Why the file is read without quoting (its dataset says `quote: false`). */
    quoting?: string;
    /** Every file read into the table (several: exports of one table). */
    files: string[];
    misfitCount: number;
  }[];
  relationships: Relationships['relationships'];
  rejected: Relationships['rejected'];
  naturalKeys: Relationships['naturalKeys'];
  /** Tables parents first: drop the files in this order, or in any order and let children wait. */
  loadOrder: string[];
  changes: string[];
  written: string[];
  /** Files left out: the loader would refuse each whole, for this reason (its own message). */
  refused: RefusedFile[];
  /** The command that loads the files read (or one per table, parents first) with the generated config. */
  next: string[];
  /** Where they load: the database at DATABASE_URL, or an embedded one gone when `run` exits. */
  loadsInto: NextStep['into'];
}

export function summarize(
  tables: InferredTable[],
  relations: Relationships,
  loadOrder: string[],
  changes: string[],
  written: string[],
  refused: RefusedFile[] = [],
  run: RunInputs = {
    config: 'dropload.config.ts',
    paths: [],
    found: [],
    datasets: tables.map((t) => t.name),
    databaseUrl: false,
  },
): InitSummary {
  const files = tables.map((t) => ({ name: t.name, files: t.file.paths }));
  return {
    tables: tables.map((t) => ({
      name: t.name,
      file: t.file.path,
      files: t.file.paths,
      rows: t.file.rows,
      columns: t.columns.map((c) => ({
        field: c.field,
        column: c.column,
        type: sqlType(c.type),
        notNull: c.notNull,
        evidence: c.evidence,
      })),
      primaryKey: t.primaryKey,
      keyEvidence: t.keyEvidence,
      nullValues: t.nullValues,
      ...(t.file.quoting ? { quoting: t.file.quoting } : {}),
      misfits: t.file.misfits,
      misfitCount: t.file.misfitCount,
    })),
    ...relations,
    loadOrder,
    changes,
    written,
    refused,
    next: runCommands(files, loadOrder, run),
    loadsInto: run.databaseUrl ? 'DATABASE_URL' : 'embedded',
  };
}

const pad = (text: string, width: number) => text.padEnd(width);

/** The terminal summary: per table its columns with evidence, key and misfits; relationships; what was written. */
export function renderSummary(s: InitSummary): string {
  const out: string[] = [];
  for (const t of s.tables) {
    out.push(`${t.name}  (${t.files.join(', ')}, ${count(t.rows, 'row')})`);
    const w = Math.max(...t.columns.map((c) => c.column.length));
    for (const c of t.columns)
      out.push(`  ${pad(c.column, w)}  ${c.type}${c.notNull ? ' not null' : ''} — ${c.evidence}`);
    out.push(`  primary key: ${t.primaryKey.length > 0 ? t.primaryKey.join(', ') : '—'} (${t.keyEvidence})`);
    if (t.nullValues.length > 1)
      out.push(`  null values: ${t.nullValues.map((v) => JSON.stringify(v)).join(', ')}`);
    if (t.quoting) out.push(`  ${t.quoting}`);
    const base = t.file.split('/').at(-1);
    for (const m of t.misfits) out.push(`  does not fit: ${m.file ?? base} line ${m.line}: ${m.reason}`);
    if (t.misfitCount > t.misfits.length)
      out.push(
        `  … and ${count(t.misfitCount - t.misfits.length, 'more row')} that ${t.misfitCount - t.misfits.length === 1 ? 'does' : 'do'} not fit`,
      );
    out.push('');
  }
  out.push('relationships:');
  for (const r of s.relationships)
    out.push(
      `  ${r.certain ? '' : '? '}${columnsOf(r.table, r.columns)} → ${columnsOf(r.parentTable, r.parentColumns)}: ${r.evidence}${r.certain ? '' : ' (written commented out)'}`,
    );
  if (s.relationships.length === 0) out.push('  none found');
  if (s.rejected.length > 0) out.push('rejected candidates:', ...rejectedLines(s.rejected));
  for (const k of s.naturalKeys)
    out.push(`unique index on ${k.table}.${k.column} (a natural key other tables point at)`);
  out.push(`load order (parents first): ${s.loadOrder.join(', ')}`);
  if (s.changes.length > 0) out.push('changes to the existing datasets:', ...s.changes.map((c) => `  ${c}`));
  if (s.refused.length > 0)
    out.push(
      'not written (the loader would refuse the whole file):',
      ...s.refused.map((r) => `  ${r.file.split('/').at(-1)}: ${r.reason}`),
    );
  if (s.written.length === 0) out.push('wrote nothing: the files there already say this');
  else out.push('wrote:', ...s.written.map((w) => `  ${w}`));
  out.push(nextHeader({ commands: s.next, into: s.loadsInto }), ...s.next.map((c) => `  ${c}`));
  return out.join('\n');
}

/** Rejected candidates the terminal shows (by child column); `--json` lists every one. */
const REJECTED_SHOWN = 10;
/** Other parents named on a child's second line. */
const ALSO_NAMED = 3;

const arrow = (r: Rejected) =>
  `${columnsOf(r.table, r.columns)} → ${columnsOf(r.parentTable, r.parentColumns)}`;

/**
 * The closest calls across every table (inference ranks them: see `Rejected.closeness`), one line for
 * each of the first REJECTED_SHOWN child columns, its other parents named after it: a column of small
 * numbers fits a dozen keys, and a dozen lines of it bury the summary.
 */
function rejectedLines(rejected: Rejected[]): string[] {
  const byChild = new Map<string, Rejected[]>();
  for (const r of rejected) {
    const child = columnsOf(r.table, r.columns);
    byChild.set(child, [...(byChild.get(child) ?? []), r]);
  }
  const out: string[] = [];
  let shown = 0;
  for (const [child, [first, ...others]] of [...byChild].slice(0, REJECTED_SHOWN)) {
    if (!first) continue;
    out.push(`  ${arrow(first)}: ${first.reason}`);
    shown += 1 + others.length;
    if (others.length === 0) continue;
    const named = others.slice(0, ALSO_NAMED).map((r) => columnsOf(r.parentTable, r.parentColumns));
    const more = others.length > ALSO_NAMED ? ` and ${others.length - ALSO_NAMED} more` : '';
    out.push(`    also rejected for ${child}: ${named.join(', ')}${more}`);
  }
  if (rejected.length > shown) out.push(`  … and ${rejected.length - shown} more (--json lists all)`);
  return out;
}
