import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConsoleDeps, overview } from '../../cli/console-api.ts';
import devConfig, { DEV_ROWS_TABLE } from '../support/dev.config.ts';
import { startTestPipeline, type TestPipeline } from '../support/pipeline.ts';
import { counting } from '../support/statements.ts';

/**
 * The console's JSON without its page (console.test.ts drives the page in Chromium): what `overview`
 * reads, against the embedded emulator and the test database.
 */

let p: TestPipeline;
beforeAll(async () => {
  p = await startTestPipeline(devConfig, [DEV_ROWS_TABLE]);
  await p.load('incoming/rows/a.csv', 'id,label\n1,a\n2,b\n');
});
afterAll(() => p?.stop());

describe('the console overview (review h7 item 4)', () => {
  it('asks for the dead-letter depths before its first ledger read, not after the last', async () => {
    const counter = counting();
    const asked: number[] = [];
    const deps: ConsoleDeps = {
      db: p.deps.db.withPlugin(counter.plugin),
      sqs: p.stack.sqs,
      logger: p.deps.logger,
      queues: async (queue) => {
        asked.push(counter.statements());
        const pair = queue === 'ingest' ? p.stack.ingest : p.stack.chunks;
        return { url: pair.url, dlqUrl: pair.dlqUrl };
      },
    };
    const seen = await overview(deps, 10);
    expect(asked).toEqual([0, 0]);
    expect(counter.statements()).toBeGreaterThan(0);
    expect(seen.deadLetters).toEqual([
      { queue: 'ingest', depth: 0 },
      { queue: 'chunks', depth: 0 },
    ]);
    expect(seen.files.map((f) => [f.key, f.state, f.rows.loaded])).toEqual([
      ['incoming/rows/a.csv', 'loaded', 2],
    ]);
  });
});
