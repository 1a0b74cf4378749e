import { CreateQueueCommand } from '@aws-sdk/client-sqs';
import { type CompiledQuery, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, createPool } from '../../shared/ledger/connection.ts';
import type { PipelineDeps } from '../../shared/pipeline/services.ts';
import fkConfig, { FK_TABLES } from '../support/fk-wait.config.ts';
import { loadParked } from '../support/parked.ts';
import { startTestPipeline, type TestPipeline } from '../support/pipeline.ts';

/**
 * A single-table dataset's chunks read its table's foreign keys from the catalog (fk-wait.test.ts
 * says what they do with them): once per worker, not at every chunk (review h7 item 4).
 */

let p: TestPipeline;
let parked: PipelineDeps;
const captured: CompiledQuery[] = [];

beforeAll(async () => {
  p = await startTestPipeline(fkConfig, FK_TABLES, { sweepEveryMs: 0 });
  const queue = await p.stack.sqs.send(new CreateQueueCommand({ QueueName: 'dropload-fk-read' }));
  // The same database through a Kysely of its own, as a worker's, that records every statement it sends.
  const db = createDb(createPool({ connectionString: p.stack.databaseUrl, poolMax: 1 }), (event) => {
    if (event.level === 'query') captured.push(event.query);
  });
  parked = { ...p.deps, db, chunkQueueUrl: queue.QueueUrl as string };
});
afterAll(async () => {
  await parked?.db.destroy();
  await p?.stop();
});

const catalogReads = () => captured.filter((q) => q.sql.includes('pg_constraint')).length;

describe('the foreign keys a chunk waits on', () => {
  it('are read from the catalog by the first chunk of a worker; the next chunk reuses them', async () => {
    // No region: a NULL foreign key waits for nothing, so both load whole.
    await loadParked(p, parked, 'incoming/territories/a.csv', 'territory_id,name,region_id\nT1,One,\n');
    expect(catalogReads()).toBe(1);
    await loadParked(p, parked, 'incoming/territories/b.csv', 'territory_id,name,region_id\nT2,Two,\n');
    expect(catalogReads()).toBe(1);
    const { rows } = await sql<{ n: number }>`select count(*)::int as n from fk.territories`.execute(
      p.deps.db,
    );
    expect(rows[0]?.n).toBe(2);
  });
});
