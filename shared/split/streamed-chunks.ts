import type { PinnedObject } from '../aws/object-store.ts';
import type { Dataset } from '../config/dataset.ts';
import type { ChunkPlan, FilePlan } from '../formats/chunking.ts';
import { checkFile } from '../formats/file-check.ts';
import { pendingChunks, recordChunks } from '../ledger/ledger.ts';
import { sendChunkMessages } from '../pipeline/chunk-queue.ts';
import type { PipelineDeps } from '../pipeline/services.ts';

/** Chunks cut since the last send that are sent at once, however little time passed. */
const SEND_EVERY_CHUNKS = 16;
/** Time after the last send at which the chunks cut since are sent, however few. */
const SEND_EVERY_MS = 100;

/**
 * Stores and sends a plain CSV or NDJSON file's chunks while the split still cuts it, so the database
 * loads the first while the rest of the file is read: the first as soon as the next one is cut, then
 * in batches. The last chunk cut is always kept back: it may be the file's last, and the split's closing
 * step (`recordPlan`) stores it with the chunk count, so no load finds the file complete before the
 * count is known, and the load that completes it finishes it as always.
 *
 * The file's checks run on the plan so far before anything is sent: those of its header and first
 * bytes refuse it as they would on the whole plan. Only what the end of the file tells (an open quote
 * swallowing its last lines) is found after chunks were sent; the split then fails it as a file
 * failing mid-load fails (shared/pipeline/partial-failure.ts).
 *
 * A second split of the same version (a redelivery after a crash) cuts the same chunks: those stored
 * already stay, and only those not loaded are sent again.
 */
export class StreamedChunks {
  readonly #deps: PipelineDeps;
  readonly #fileId: number;
  readonly #dataset: Dataset;
  readonly #source: PinnedObject;
  readonly #size: number;
  #stored = 0;
  #sent = 0;
  #lastSend = 0;
  #open = true;
  #columns: string[] | undefined;

  constructor(deps: PipelineDeps, fileId: number, dataset: Dataset, source: PinnedObject, size: number) {
    this.#deps = deps;
    this.#fileId = fileId;
    this.#dataset = dataset;
    this.#source = source;
    this.#size = size;
  }

  /** Chunks stored so far (the first ones of the plan). */
  get stored(): number {
    return this.#stored;
  }

  /** Chunk messages sent so far. */
  get sent(): number {
    return this.#sent;
  }

  /** The file's columns, as the checks before the first send found them. */
  get columns(): string[] | undefined {
    return this.#columns;
  }

  /** The planner's `onChunks`: sends what is due of the chunks cut so far. */
  readonly onChunks = async (plan: FilePlan): Promise<void> => {
    const ready = plan.chunks.length - 1;
    if (!this.#open || ready <= this.#stored) return;
    if (this.#stored === 0) this.#columns = checkFile(this.#dataset, plan, this.#size);
    else if (ready - this.#stored < SEND_EVERY_CHUNKS && performance.now() - this.#lastSend < SEND_EVERY_MS)
      return;
    await this.#store(plan.chunks.slice(this.#stored, ready), true);
  };

  /** The chunks of the whole plan not stored yet. */
  rest(plan: FilePlan): ChunkPlan[] {
    return plan.chunks.slice(this.#stored);
  }

  /** Stores the rest of the plan without sending it: a file refused at its end fails with all its chunks told. */
  async storeRest(plan: FilePlan): Promise<void> {
    if (this.#open) await this.#store(this.rest(plan), false);
  }

  async #store(chunks: ChunkPlan[], send: boolean): Promise<void> {
    const from = this.#stored;
    const to = from + chunks.length;
    this.#open = await recordChunks(this.#deps.db, this.#fileId, chunks, this.#columns ?? null);
    // The file ended meanwhile (a chunk found its object gone): nothing more of it is sent.
    if (!this.#open || !send) return;
    const pending = await pendingChunks(this.#deps.db, this.#fileId, { from, to });
    this.#sent += await sendChunkMessages(
      this.#deps,
      {
        fileId: this.#fileId,
        chunkCount: undefined,
        dataset: this.#dataset,
        source: this.#source,
        columns: this.#columns,
      },
      pending,
    );
    this.#stored = to;
    this.#lastSend = performance.now();
  }
}
