import { randomBytes } from 'node:crypto';
import pg from 'pg';

/**
 * Gives each test run a database of its own, created next to the one DATABASE_URL names and dropped
 * afterwards, so two runs on one server (a developer's and CI's, say) never drop each other's tables.
 * Without DATABASE_URL the tests use embedded PGlite, which is private to each run anyway.
 */
export default async function setup(): Promise<(() => Promise<void>) | undefined> {
  const base = process.env.DATABASE_URL;
  if (!base) return undefined;
  const name = `dropload_test_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(base);
  url.pathname = `/${name}`;
  process.env.DATABASE_URL = url.toString();
  return async () => {
    const cleanup = new pg.Client({ connectionString: base });
    await cleanup.connect();
    await cleanup.query(`drop database if exists ${name} with (force)`);
    await cleanup.end();
  };
}
