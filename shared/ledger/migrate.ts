import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Kysely } from 'kysely';
import {
  DEFAULT_MIGRATION_LOCK_TABLE,
  DEFAULT_MIGRATION_TABLE,
  FileMigrationProvider,
  type Migration,
  type MigrationResult,
  Migrator,
} from 'kysely/migration';
import { MigrationError } from '../core/errors.ts';
import * as ledger from './migrations/20261127070000_ledger.ts';
import * as orphans from './migrations/20261201090000_orphans.ts';
import * as stalled from './migrations/20261204090000_stalled.ts';
import * as expandedBytes from './migrations/20261215090000_expanded_bytes.ts';
import * as versionOrder from './migrations/20261215090000_version_order.ts';
import * as rejectKind from './migrations/20261220090000_reject_kind.ts';
import * as waiting from './migrations/20261221090000_waiting.ts';
import * as rejectLifecycle from './migrations/20261222090000_reject_lifecycle.ts';
import * as counts from './migrations/20261224090000_counts.ts';
import * as tableCounts from './migrations/20261228090000_table_counts.ts';
import * as orphanParentRow from './migrations/20261228100000_orphan_parent_row.ts';
import * as resumes from './migrations/20261229090000_resumes.ts';
import * as fileAction from './migrations/20261230090000_file_action.ts';
import * as chunkStarted from './migrations/20261231090000_chunk_started.ts';

/** dropload's own tables, tracked apart from the user's migrations. */
const LEDGER_MIGRATIONS: Record<string, Migration> = {
  '20261127070000_ledger': ledger,
  '20261201090000_orphans': orphans,
  '20261204090000_stalled': stalled,
  '20261215090000_expanded_bytes': expandedBytes,
  '20261215090000_version_order': versionOrder,
  '20261220090000_reject_kind': rejectKind,
  '20261221090000_waiting': waiting,
  '20261222090000_reject_lifecycle': rejectLifecycle,
  '20261224090000_counts': counts,
  '20261228090000_table_counts': tableCounts,
  '20261228100000_orphan_parent_row': orphanParentRow,
  '20261229090000_resumes': resumes,
  '20261230090000_file_action': fileAction,
  '20261231090000_chunk_started': chunkStarted,
};

/** The schema of dropload's own tables: the ledger, the migrations' bookkeeping, publish staging tables. */
export const LEDGER_SCHEMA = 'dropload';
const DATASET_MIGRATION_TABLE = 'dataset_migration';
const DATASET_MIGRATION_LOCK_TABLE = 'dataset_migration_lock';
/** The migrators' bookkeeping (in LEDGER_SCHEMA): only migrations may write it. */
export const MIGRATION_TABLES = [
  DEFAULT_MIGRATION_TABLE,
  DEFAULT_MIGRATION_LOCK_TABLE,
  DATASET_MIGRATION_TABLE,
  DATASET_MIGRATION_LOCK_TABLE,
] as const;

export type MigrationSource = string | Record<string, Migration>;

export interface MigrationOutcome {
  applied: string[];
}

/**
 * Kysely refuses to go on when the database records a migration the config does not have: for the
 * datasets' migrations that is, nearly always, another config's (another project, another `init --out`)
 * migrated into this same database.
 */
function hint(label: string, message: string): string {
  if (label !== 'dataset' || !message.includes('corrupted migrations')) return '';
  return ` (this database records migrations this config does not have: another config migrated it. Use a database of its own for each config, or put every dataset into one config)`;
}

async function runMigrator(migrator: Migrator, label: string): Promise<string[]> {
  const { error, results } = await migrator.migrateToLatest();
  const failed = results?.find((r: MigrationResult) => r.status === 'Error');
  if (error || failed) {
    const which = failed ? ` (${failed.migrationName})` : '';
    const message = String((error as Error)?.message ?? error);
    throw new MigrationError(`${label} migration failed${which}: ${message}${hint(label, message)}`, {
      cause: error,
    });
  }
  return (results ?? []).map((r) => r.migrationName);
}

/** The migrator of dropload's own tables, the ledger (`migrateToLatest` runs it first). */
export function ledgerMigrator<DB>(db: Kysely<DB>): Migrator {
  return new Migrator({
    db,
    provider: { getMigrations: async () => LEDGER_MIGRATIONS },
    migrationTableSchema: LEDGER_SCHEMA,
  });
}

/** Applies the ledger migrations, then the user's (a folder of timestamped files, or a record of modules). */
export async function migrateToLatest<DB>(
  db: Kysely<DB>,
  userMigrations?: MigrationSource,
): Promise<MigrationOutcome> {
  const applied = await runMigrator(ledgerMigrator(db), 'dropload ledger');
  if (userMigrations) {
    const provider =
      typeof userMigrations === 'string'
        ? new FileMigrationProvider({ fs, path, migrationFolder: path.resolve(userMigrations) })
        : { getMigrations: async () => userMigrations };
    const migrator = new Migrator({
      db,
      provider,
      migrationTableSchema: LEDGER_SCHEMA,
      migrationTableName: DATASET_MIGRATION_TABLE,
      migrationLockTableName: DATASET_MIGRATION_LOCK_TABLE,
    });
    applied.push(...(await runMigrator(migrator, 'dataset')));
  }
  return { applied };
}
