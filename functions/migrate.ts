import config from '#dropload-config';
import { createDb, createPool } from '../shared/db/connection.ts';
import { migrateToLatest } from '../shared/db/migrate.ts';
import { databaseSettings } from '../shared/environment.ts';
import { logger } from '../shared/lambda-deps.ts';

/**
 * Run by the stack's deploy trigger: applies the ledger's and the datasets' migrations. Throwing fails
 * the deployment, so a stack never goes live on a schema it cannot load into.
 */
export async function handler(): Promise<{ applied: string[] }> {
  const pool = createPool({ ...(await databaseSettings()), poolMax: 1 });
  const db = createDb(pool);
  try {
    const outcome = await migrateToLatest(db, config.migrations);
    logger.info('migrated', { applied: outcome.applied });
    return outcome;
  } finally {
    await db.destroy();
  }
}
