import {
  firstSpan,
  lastRecordEnd,
  type TextFormat,
  type WideStretches,
} from '../../shared/formats/chunking.ts';

/** A record longer than the limit: its bytes [start, end) in the block, and the physical lines it covers. */
export interface OversizedRecord {
  start: number;
  end: number;
  lines: number;
}

/**
 * The records longer than `limit` bytes, which the load rejects unread, in the stretches of `bytes`
 * that `lastRecordEnd` found wider than the limit (each a run of whole records): none at all in a
 * block whose quotes come often. In a stretch, a window of `limit` bytes at a time jumps to the last
 * record end in it; only a window with none holds the start of a longer record, which the record
 * scanner then measures. The per-value loop does no work for it.
 */
export function oversizedRecords(
  bytes: Uint8Array,
  stretches: WideStretches,
  text: TextFormat,
): OversizedRecord[] {
  const out: OversizedRecord[] = [];
  const { limit } = stretches;
  for (const [start, end] of stretches.found) {
    let at = start;
    // A rest no longer than the limit holds no record longer than it.
    while (end - at > limit) {
      const next = lastRecordEnd(bytes.subarray(at, at + limit), text);
      if (next > 0) {
        at += next;
        continue;
      }
      const span = firstSpan(bytes.subarray(at, end), text);
      // A quote never closed: the parser reports it, as the load does (not as a size).
      if (!span || span.unterminated) break;
      out.push({ start: at, end: at + span.end, lines: span.lines });
      at += span.end;
    }
  }
  return out;
}
