import { setFlagsFromString } from 'node:v8';

/**
 * How far V8 lets the old generation grow past what its last full collection found alive, in percent.
 * Left to itself V8 picks a factor from 1.1 to 4 after each full collection, from how fast the collector
 * runs against the program (4 whenever the heap limit is at least V8's default for the machine's memory,
 * and the collector keeps up): the same chunks then peak at whatever that moment's machine lets the heap
 * grow to. A Parquet load worker, about 40–55 MB alive mid-chunk, peaked at 274 MB on a busy machine and
 * 419 MB on a quiet one (issue 14). Fixed at 2×, its peak follows what is alive; what the collections it
 * adds cost in CPU time is not settled yet (README, Performance: "The heap's growing factor").
 */
export const HEAP_GROWING_PERCENT = 100;

let bounded = false;

/**
 * Fixes the old generation's growing factor for this process, from the first Parquet chunk read on: a
 * CSV or NDJSON load keeps little alive between collections and keeps V8's own factor (the fixed one
 * adds full collections, whose CPU time a CSV load worker would pay for nothing). V8 reads the flag
 * each time it sets the next collection's limit, so setting it once, late, is enough; it cannot go in
 * NODE_OPTIONS (Node takes only a few V8 flags there).
 */
export function boundHeapGrowth(): void {
  if (bounded) return;
  bounded = true;
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}
