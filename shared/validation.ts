import type { z } from 'zod';
import type { Dataset } from './dataset.ts';
import type { ParsedRecord } from './parsing.ts';

export interface Reject {
  line: number;
  column: string | null;
  reason: string;
  raw: string;
}

export interface ValidRow {
  line: number;
  raw: string;
  values: Record<string, unknown>;
}

export interface Validated {
  rows: ValidRow[];
  rejects: Reject[];
}

function describe(value: unknown): string {
  if (value === undefined) return 'no value';
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return JSON.stringify(text.length > 60 ? `${text.slice(0, 57)}...` : text);
}

/** zod's wording for coerced values ("expected date, received Date") says little to whoever fixes the file. */
function plainMessage(issue: z.core.$ZodIssue, missing: boolean): string {
  if (missing) return 'a value is required';
  if (issue.code === 'invalid_type' && (issue.expected === 'date' || issue.expected === 'number')) {
    return `not a valid ${issue.expected}`;
  }
  return issue.message;
}

function rejectFor(record: ParsedRecord, input: Record<string, unknown>, issue: z.core.$ZodIssue): Reject {
  const column = issue.path.length > 0 ? String(issue.path[0]) : null;
  if (column === null) return { line: record.line, column, reason: issue.message, raw: record.raw };
  const missing = input[column] === undefined;
  const reason = `${plainMessage(issue, missing)} (got ${describe(record.fields?.[column])})`;
  return { line: record.line, column, reason, raw: record.raw };
}

/** Values listed as "no value" (and JSON nulls) reach the schema as undefined, so `.optional()` marks a nullable column. */
function withNulls(
  fields: Record<string, unknown>,
  nullValues: ReadonlySet<string>,
): Record<string, unknown> {
  let out: Record<string, unknown> | undefined;
  for (const name in fields) {
    const v = fields[name];
    if (v === null || (typeof v === 'string' && nullValues.has(v))) {
      // Copied only when something changes: most rows go to the schema as read, and the original
      // stays intact for the reject's "got …".
      out ??= { ...fields };
      out[name] = undefined;
    }
  }
  return out ?? fields;
}

/** Checks every record against the dataset's schema; each failure becomes a reject naming line and column. */
export function validateRecords(dataset: Dataset, records: ParsedRecord[]): Validated {
  const rows: ValidRow[] = [];
  const rejects: Reject[] = [];
  for (const record of records) {
    if (!record.fields || record.error) {
      rejects.push({
        line: record.line,
        column: record.error?.column ?? null,
        reason: record.error?.reason ?? 'unreadable record',
        raw: record.raw,
      });
      continue;
    }
    const input = withNulls(record.fields, dataset.nullValues);
    const result = dataset.schema.safeParse(input);
    if (result.success) rows.push({ line: record.line, raw: record.raw, values: result.data });
    else rejects.push(rejectFor(record, input, result.error.issues[0] as z.core.$ZodIssue));
  }
  return { rows, rejects };
}

/** Which schema fields a file must carry: those that do not accept a missing value. */
export function requiredFields(dataset: Dataset): string[] {
  return dataset.fields.filter((f) => !dataset.schema.shape[f]?.safeParse(undefined).success);
}
