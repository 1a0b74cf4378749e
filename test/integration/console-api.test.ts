import { sql } from 'kysely';
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

describe('the console rows/s (trial finding F5)', () => {
  it("spreads a chunk's rows over the time from its worker taking it to its commit", async () => {
    const db = p.deps.db;
    const chunk = await sql<{ started: boolean }>`select started_at <= loaded_at as started
      from dropload.chunk c join dropload.file f on f.id = c.file_id where f.key = 'incoming/rows/a.csv'`.execute(
      db,
    );
    // The load noted when the chunk began (the claim keeps it), not only when it committed.
    expect(chunk.rows).toEqual([{ started: true }]);
    // Its 2 rows as if they had taken 2 s, ten seconds ago: 1 row/s in each of those seconds.
    const { rows } = await sql<{ t: number }>`select floor(extract(epoch from now()))::int - 10 as t`.execute(
      db,
    );
    const t = rows[0]?.t as number;
    await sql`update dropload.chunk set started_at = to_timestamp(${t}), loaded_at = to_timestamp(${t + 2})
      where file_id = (select id from dropload.file where key = 'incoming/rows/a.csv')`.execute(db);
    const deps: ConsoleDeps = {
      db,
      sqs: p.stack.sqs,
      logger: p.deps.logger,
      queues: async () => ({ url: p.stack.chunks.url, dlqUrl: p.stack.chunks.dlqUrl }),
    };
    const seen = await overview(deps, 10);
    expect(seen.throughput).toEqual({
      seconds: 300,
      points: [
        { second: t, rows: 1 },
        { second: t + 1, rows: 1 },
      ],
    });
  });
});
