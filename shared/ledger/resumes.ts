import { type Kysely, sql } from 'kysely';
import { clock } from './ledger.ts';
import type { Database, FileRow, FileState } from './schema.ts';

/**
 * An interruption: work on a file that is splitting or loading stopped without leaving an outcome in
 * the ledger (no commit, no recorded failure), because what did it died: a `kill -9` of `dev` or `run`,
 * a load Lambda that crashed or timed out mid-chunk (or a failure the database could not be told of).
 * It is seen when the work starts again, the resume:
 * - a chunk that has not loaded is delivered again while its previous delivery recorded no failure
 *   (`lostDelivery`): that delivery's worker died, and its message came back after its visibility timeout;
 * - the file is announced again while its work was under way (`interruptedWhenAnnounced`; by
 *   `backfill --resume`, which a restarted `dev` does, a rerun of `run`, a redelivered split): what was
 *   doing its work stopped.
 * The lost work began before the resume that follows it, so a lost delivery that began before the
 * file's last recorded resume was lost in the interruption already counted (the other chunks of a dead
 * worker's batch, the messages a killed `dev` held): each interruption counts once.
 */
export const INTERRUPTIBLE_STATES: readonly FileState[] = ['splitting', 'loading'];

/**
 * The note a failed delivery of a split leaves on its file. The split may fail after it recorded its plan
 * (its chunk messages refused), the file `loading` by then: the note tells that retry from an interruption.
 */
export const splitFailureText = (text: string): string => `split ${text}`;

/**
 * Whether a file announced again was interrupted: splitting or loading, with no failure of its split
 * recorded (a split that failed and said so is retried, not resumed; a chunk's failure does not vouch
 * for the work on the other chunks).
 */
export function interruptedWhenAnnounced(file: Pick<FileRow, 'state' | 'error'>): boolean {
  if (file.error?.startsWith(splitFailureText(''))) return false;
  return file.state === 'loading' || (file.state === 'splitting' && file.error === null);
}

/** A delivery of a queue message as the event source hands it over (SQS's receive count and first receipt). */
export interface Delivery {
  count: number;
  firstReceivedAt: Date;
}

/**
 * When the lost work began, if this chunk delivery resumes work an earlier one left without a trace:
 * the chunk records each failed delivery's number (`attempts`), so one short of this delivery's number
 * means the previous one neither loaded the chunk nor failed. Undefined when nothing was lost.
 */
export function lostDelivery(delivery: Delivery | undefined, recordedAttempts: number): Date | undefined {
  if (!delivery || delivery.count - 1 <= recordedAttempts) return undefined;
  return delivery.firstReceivedAt;
}

/**
 * Records a resume of the file's work, lost since `lostSince` (now: for a file announced again), unless
 * that work was lost in the interruption its last resume counted. The time since the file's last
 * change is added to its idle seconds: what the interruption cost it. Returns whether it counted.
 */
export async function recordResume(
  db: Kysely<Database>,
  fileId: number,
  lostSince: Date | 'now' = 'now',
): Promise<boolean> {
  const since = lostSince === 'now' ? clock : lostSince;
  const result = await db
    .updateTable('dropload.file')
    .set((eb) => ({
      resumes: eb('resumes', '+', 1),
      resumed_at: clock,
      idle_seconds: sql<number>`idle_seconds + greatest(0, extract(epoch from ${clock} - updated_at))`,
      updated_at: clock,
    }))
    .where('id', '=', fileId)
    .where('state', 'in', INTERRUPTIBLE_STATES)
    .where((eb) => eb.or([eb('resumed_at', 'is', null), eb('resumed_at', '<', since)]))
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** A file's resumes as `status`, the console and the receipt give them. */
export interface Resumed {
  times: number;
  /** When the last resume began (ISO 8601, UTC). */
  lastAt: string;
  /** Seconds the file made no progress before its resumes: part of its `seconds`, not work. */
  idleSeconds: number;
}

export function resumedOf(file: FileRow): Resumed | null {
  if (file.resumes === 0 || file.resumed_at === null) return null;
  return {
    times: file.resumes,
    lastAt: new Date(file.resumed_at).toISOString(),
    idleSeconds: Math.round(file.idle_seconds * 10) / 10,
  };
}

/**
 * `resumed 1× after an interruption, at 05:31:40 UTC; of its 52.3 s, 38.0 were idle before it and 14.3
 * active; nothing to do: no row is lost or loaded twice`. `seconds`: the file's, so far. A stalled or
 * failed file does not finish by itself: its resumes lost nothing, but there is something to do (its error).
 */
export function resumedText(r: Resumed, seconds: number, state: FileState | 'queued'): string {
  const at = `${r.lastAt.slice(11, 19)} UTC`;
  const [what, it] =
    r.times === 1
      ? [`resumed 1× after an interruption, at ${at}`, 'it']
      : [`resumed ${r.times}× after interruptions, the last at ${at}`, 'them'];
  const active = Math.max(0, seconds - r.idleSeconds);
  const split = `of its ${seconds.toFixed(1)} s, ${r.idleSeconds.toFixed(1)} were idle before ${it} and ${active.toFixed(1)} active`;
  if (state === 'stalled' || state === 'failed')
    return `${what}; ${split}; no row is lost or loaded twice by ${it}, but the file is ${state}: see its error`;
  return `${what}; ${split}; nothing to do: no row is lost or loaded twice`;
}
