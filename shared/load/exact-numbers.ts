import type { z } from 'zod';
import type { Dataset } from '../config/dataset.ts';
import { textReader } from '../config/fields.ts';
import type { InexactNumber } from '../formats/json-text.ts';
import type { Reject } from '../ledger/ledger.ts';

/**
 * NDJSON numbers JSON.parse did not read as written (see formats/json-text.ts) reach Postgres as
 * written, or reject their row. A top-level field whose schema is a strict helper (`numeric()`,
 * `bigintText()`, …) reads the number's text, as it reads a CSV value: `numeric()` keeps every digit.
 * A field whose schema takes any value as it is (`z.unknown()`, `z.any()`: a document for a json/jsonb
 * column) gets the number as its text, `JSON.rawJSON`, which JSON.stringify writes as it is and jsonb
 * keeps exactly. Any other field that keeps the number (`z.number()`, a document under `z.json()` or
 * `z.object`, which read and rebuild its values) would store the double's digits, so its row is
 * rejected naming the path. Numbers in fields the schema does not declare are dropped with them.
 */
export interface ExactNumbers {
  /** Puts the file's text in place of each number a text-reading or pass-through field gets; returns the others. */
  readAsText(fields: Record<string, unknown>, numbers: InexactNumber[]): InexactNumber[];
  /** The reject for a record that passed its schema with a number still read inexactly, or undefined. */
  reject(numbers: InexactNumber[], record: { line: number; raw: string }): Reject | undefined;
}

const WRAPPERS = new Set(['optional', 'nullable', 'default', 'prefault', 'catch', 'readonly', 'nonoptional']);

type TextReader = (text: string) => unknown;

/** The text reader of a field's schema that is a strict helper (under optional, nullable, …), if it is one. */
function readerOf(schema: z.core.$ZodType): TextReader | undefined {
  let at = schema;
  for (;;) {
    const reader = textReader(at);
    if (reader) return reader;
    const def = at._zod.def as z.core.$ZodTypeDef & { innerType?: z.core.$ZodType };
    if (!WRAPPERS.has(def.type) || !def.innerType) return undefined;
    at = def.innerType;
  }
}

/** What passes any value through untouched, so a raw JSON number inside it reaches JSON.stringify as it is. */
const PASS_THROUGH = new Set(['unknown', 'any']);

function passesThrough(schema: z.core.$ZodType): boolean {
  let def = schema._zod.def as z.core.$ZodTypeDef & { innerType?: z.core.$ZodType };
  while (WRAPPERS.has(def.type) && def.innerType)
    def = def.innerType._zod.def as z.core.$ZodTypeDef & { innerType?: z.core.$ZodType };
  return PASS_THROUGH.has(def.type);
}

// ES2025's raw JSON (Node 21 and later), not yet in TypeScript's lib.
declare global {
  interface JSON {
    rawJSON(text: string): object;
  }
}

/** Puts `value` at `path` inside `fields` (the parsed record's own objects and arrays). */
function setAt(fields: Record<string, unknown>, path: (string | number)[], value: unknown): void {
  let holder = fields as Record<string | number, unknown>;
  for (let i = 0; i < path.length - 1; i++)
    holder = holder[path[i] as string | number] as Record<string | number, unknown>;
  holder[path[path.length - 1] as string | number] = value;
}

export function exactNumbers(dataset: Dataset): ExactNumbers {
  const shape = dataset.schema.shape as Record<string, z.core.$ZodType>;
  const declared = new Set(dataset.fields);
  const readers = new Map<string, TextReader>();
  const raw = new Set<string>();
  for (const f of dataset.fields) {
    const reader = shape[f] && readerOf(shape[f]);
    if (reader) readers.set(f, reader);
    else if (shape[f] && passesThrough(shape[f])) raw.add(f);
  }
  return {
    readAsText(fields, numbers) {
      const rest: InexactNumber[] = [];
      for (const n of numbers) {
        const name = n.path[0];
        const reader = n.path.length === 1 && typeof name === 'string' ? readers.get(name) : undefined;
        // A text the helper refuses stays the double: its reject then quotes the file's text and says why.
        if (reader && reader(n.source) !== undefined) fields[name as string] = n.source;
        else if (typeof name === 'string' && raw.has(name)) setAt(fields, n.path, JSON.rawJSON(n.source));
        else rest.push(n);
      }
      return rest;
    },
    reject(numbers, record) {
      const kept = numbers.find((n) => typeof n.path[0] === 'string' && declared.has(n.path[0]));
      if (!kept) return undefined;
      return {
        line: record.line,
        column: pathText(kept.path),
        kind: 'unwritable',
        reason: inexactReason(kept),
        raw: record.raw,
      };
    },
  };
}

/** Why a number beyond a double's range is not written (JSON.parse reads it as Infinity). */
export const BEYOND_DOUBLE = 'a number JSON cannot hold (beyond the range of a double)';

/**
 * The path, inside `value`, of its first number beyond a double (an Infinity JSON.parse made), or
 * undefined. A schema that reads a document (`z.json()`) refuses the Infinity at the document, where
 * zod's "got …" would show it as the JSON null it stringifies to: runs on such refusals only.
 */
export function beyondDoubleIn(value: unknown): (string | number)[] | undefined {
  if (typeof value === 'number') return Number.isFinite(value) || Number.isNaN(value) ? undefined : [];
  if (value === null || typeof value !== 'object') return undefined;
  for (const [key, inner] of Object.entries(value)) {
    const path = beyondDoubleIn(inner);
    if (path) return [Array.isArray(value) ? Number(key) : key, ...path];
  }
  return undefined;
}

/** `value` with each number beyond a double (an Infinity) as 0, copied where it holds one: to ask a schema whether it refuses anything else. */
export function finiteCopy(value: unknown): unknown {
  if (typeof value === 'number') return Number.isFinite(value) || Number.isNaN(value) ? value : 0;
  if (value === null || typeof value !== 'object' || beyondDoubleIn(value) === undefined) return value;
  if (Array.isArray(value)) return value.map(finiteCopy);
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, finiteCopy(v)]));
}

function inexactReason(n: InexactNumber): string {
  if (!Number.isFinite(n.value)) return BEYOND_DOUBLE;
  return `a number a double does not hold as written (got ${n.source}, it would be stored as ${String(n.value)}): write it as a string`;
}

/** `doc.v`, `lines[1].price`: a path as rejects name columns. */
function pathText(path: (string | number)[]): string {
  let out = '';
  for (const part of path) out += typeof part === 'number' ? `[${part}]` : out === '' ? part : `.${part}`;
  return out;
}
