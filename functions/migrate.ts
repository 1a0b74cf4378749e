import config from '#dropload-config';
import { resolveConfig } from '../shared/config/config.ts';
import { createDb, createPool } from '../shared/ledger/connection.ts';
import { migrateToLatest } from '../shared/ledger/migrate.ts';
import { prepareLoaderRole } from '../shared/ledger/roles.ts';
import { databaseSettings, loaderSettings } from '../shared/runtime/environment.ts';
import { logger } from '../shared/runtime/lambda-deps.ts';

/**
 * Run by the stack's deploy trigger, as the database's admin user: applies the ledger's and the datasets'
 * migrations, then creates the loader role split and load log in as (when the stack gives it one) and
 * grants it what the datasets need. Throwing fails the deployment, so a stack never goes live on a
 * schema it cannot load into.
 */
export async function handler(): Promise<{ applied: string[] }> {
  const pool = createPool({ ...(await databaseSettings()), poolMax: 1 });
  const db = createDb(pool);
  try {
    const outcome = await migrateToLatest(db, config.migrations);
    logger.info('migrated', { applied: outcome.applied });
    const loader = await loaderSettings();
    if (loader) {
      const { datasets } = resolveConfig(config, 'bundled config');
      // The outcome names the role and the tables, never the password.
      logger.info('loader role', { ...(await prepareLoaderRole(db, loader, datasets)) });
    }
    return outcome;
  } finally {
    await db.destroy();
  }
}
