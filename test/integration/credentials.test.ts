import { randomBytes } from 'node:crypto';
import { type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classifyError, TransientError } from '../../shared/core/errors.ts';
import {
  type ConnectionSettings,
  createDb,
  createPool,
  RenewingPool,
  type SettingsSource,
} from '../../shared/ledger/connection.ts';
import type { Database } from '../../shared/ledger/schema.ts';

// A rotated secret under a live Lambda: sessions already open keep working, a new connection with the
// old credentials is refused, and the pool must read the secret again rather than fail until a cold
// start. Authentication only exists on a real server (PGlite has none), so this runs with DATABASE_URL.
// The test server trusts local logins whatever the password, so the credentials change by the user's
// name (what the server refuses is the role, SQLSTATE 28000, where a changed password gives 28P01;
// the pool treats both alike).

const base = process.env.DATABASE_URL;
const suffix = randomBytes(4).toString('hex');
const before = `rt_cred_${suffix}`;
const after = `rt_cred_${suffix}_rotated`;

const urlFor = (user: string) => {
  const url = new URL(base ?? 'postgres://localhost');
  url.username = user;
  url.password = 'not-checked-here';
  return url.toString();
};

/** A secret the test can rotate, and the reads the pool made of it (true: asked for fresh settings). */
function secret(initial: string) {
  const state = { url: initial, reads: [] as boolean[] };
  const source: SettingsSource = async ({ fresh = false } = {}) => {
    state.reads.push(fresh);
    return { connectionString: state.url, poolMax: 2 } satisfies ConnectionSettings;
  };
  return { state, source };
}

const whoAmI = async (db: Kysely<Database>) =>
  (await sql<{ u: string }>`select current_user as u`.execute(db)).rows[0]?.u;

describe.runIf(base)('a pool whose credentials change under it', () => {
  let admin: Kysely<Database>;
  beforeAll(async () => {
    admin = createDb(createPool({ connectionString: base as string, poolMax: 1 }));
    await sql`create role ${sql.id(before)} login`.execute(admin);
  });
  afterAll(async () => {
    for (const role of [before, after]) await sql`drop role if exists ${sql.id(role)}`.execute(admin);
    await admin.destroy();
  });

  it('reads its settings again once when new connections are refused, and goes on with them', async () => {
    const { state, source } = secret(urlFor(before));
    const pool = await RenewingPool.open(source);
    const db = createDb(pool);
    try {
      expect(await whoAmI(db)).toBe(before);
      // Keep the first session busy: the queries below need new connections.
      const held = await pool.connect();
      await sql`alter role ${sql.id(before)} rename to ${sql.id(after)}`.execute(admin);
      state.url = urlFor(after);
      // Three new connections wanted at once: one gets the free slot and is refused, the others queue in the
      // old pool behind it. One read of the secret serves all, and none is left waiting in the old pool.
      expect(await Promise.all([whoAmI(db), whoAmI(db), whoAmI(db)])).toEqual([after, after, after]);
      // The session opened before the change is unaffected (PostgreSQL authenticates only at connect).
      expect((await held.query<{ ok: number }>('select 1 as ok')).rows).toEqual([{ ok: 1 }]);
      held.release();
      expect(state.reads).toEqual([false, true]);
      expect(await whoAmI(db)).toBe(after);
      expect(state.reads).toEqual([false, true]);
    } finally {
      await db.destroy();
    }
  });

  it('when the source still has the refused credentials, fails transiently and keeps the cause', async () => {
    const { state, source } = secret(urlFor(`rt_cred_${suffix}_nobody`));
    const db = createDb(await RenewingPool.open(source));
    try {
      const err = await whoAmI(db).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TransientError);
      expect(classifyError(err)).toBe('transient');
      expect((err as Error).message).toMatch(
        /refused the credentials, also after reading them again \(SQLSTATE 28000\)/,
      );
      expect(((err as Error).cause as { code?: string }).code).toBe('28000');
      expect(state.reads).toEqual([false, true]);
    } finally {
      await db.destroy();
    }
  });
});
