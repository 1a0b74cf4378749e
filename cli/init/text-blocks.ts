import { createReadStream } from 'node:fs';
import { createGunzip } from 'node:zlib';
import { DEFAULT_MAX_RECORD_BYTES } from '../../shared/config/dataset.ts';
import {
  firstSpan,
  lastRecordEnd,
  type TextFormat,
  type WideStretches,
} from '../../shared/formats/chunking.ts';
import { parseHeader } from '../../shared/formats/parsing.ts';
import { oversizedRecords } from './oversized.ts';

/**
 * What a CSV/TSV or NDJSON file is read as, in file order: its header (CSV) with the line after it,
 * blocks of whole records as bytes, and between them the records over `maxRecordBytes` (the load
 * rejects those unread, so their values are no evidence) with the lines they cover.
 */
export type BlockEvent =
  | { kind: 'header'; header: string[]; line: number }
  | { kind: 'records'; bytes: Uint8Array }
  | { kind: 'oversized'; size: number; lines: number };

/** Decoded text handed to the parser at once: whole records, about this many bytes. */
export const BLOCK_BYTES = 4 * 1024 * 1024;
/**
 * Bytes read from the file at a time: 1 MB, not the stream's default 64 KB, so a 1 GB file takes a thousand
 * trips through the thread pool and event loop instead of sixteen thousand (each one a wait on a busy machine).
 */
const READ_BYTES = 1024 * 1024;
const BOM = [0xef, 0xbb, 0xbf];

export const bomLength = (bytes: Uint8Array): number =>
  BOM.every((b, i) => bytes[i] === b) ? BOM.length : 0;

/**
 * Streams the file's bytes (gunzipped when gzip) as blocks of whole records, cut where the record
 * scanner ends a record (`lastRecordEnd`), so `init` reads records and misfits exactly as a load would.
 */
export async function* textBlocks(file: string, gzip: boolean, text: TextFormat): AsyncGenerator<BlockEvent> {
  const { format, delimiter, quote } = text;
  let pending: Uint8Array[] = [];
  let held = 0;
  /** Bytes held before the next cut is tried: doubles while one record outgrows it, so a huge record is searched a few times, not once a read. */
  let threshold = BLOCK_BYTES;
  let headerRead = format !== 'csv';
  function* flush(final: boolean): Generator<BlockEvent> {
    let bytes = Buffer.concat(pending);
    if (!headerRead) {
      const span = firstSpan(bytes, text, final);
      if (!span) return hold([bytes], final);
      headerRead = true;
      const header = parseHeader(bytes.subarray(span.start, span.end), delimiter, quote);
      yield { kind: 'header', header, line: span.line + span.lines };
      bytes = bytes.subarray(span.end);
    }
    const wide: WideStretches = { limit: DEFAULT_MAX_RECORD_BYTES, found: [] };
    const ended = lastRecordEnd(bytes, text, wide);
    const cut = final ? bytes.length : ended;
    // The file's last record may end without a line break.
    if (cut - ended > wide.limit) wide.found.push([ended, cut]);
    let from = 0;
    for (const o of oversizedRecords(bytes, wide, text)) {
      if (o.start > from) yield { kind: 'records', bytes: bytes.subarray(from, o.start) };
      yield { kind: 'oversized', size: o.end - o.start, lines: o.lines };
      from = o.end;
    }
    if (cut > from) yield { kind: 'records', bytes: bytes.subarray(from, cut) };
    hold([bytes.subarray(cut)], final || cut > 0);
  }
  const hold = (rest: Uint8Array[], cut: boolean) => {
    pending = rest;
    held = rest.reduce((n, b) => n + b.length, 0);
    threshold = cut ? BLOCK_BYTES : Math.max(BLOCK_BYTES, 2 * held);
  };
  const source = createReadStream(file, { highWaterMark: READ_BYTES });
  const stream = gzip ? source.pipe(createGunzip()) : source;
  let first = true;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      const bytes = first ? chunk.subarray(bomLength(chunk)) : chunk;
      first = false;
      pending.push(bytes);
      held += bytes.length;
      if (held >= threshold) yield* flush(false);
    }
    yield* flush(true);
  } finally {
    source.destroy();
  }
}
