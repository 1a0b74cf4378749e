import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { resolveConfig } from '../../shared/config/config.ts';
import { ConfigError } from '../../shared/core/errors.ts';
import { credentialsOf, loaderTablePrivileges } from '../../shared/ledger/roles.ts';
import { databaseSettingsSource, loaderSettings } from '../../shared/runtime/environment.ts';

const schema = z.object({ code: z.string(), kind: z.string() });

describe('loaderTablePrivileges (from the config, the one source of the grants)', () => {
  it('writes each table and target, deletes only for replace, only reads referenced parents', () => {
    const { datasets } = resolveConfig({
      datasets: [
        { name: 'a', format: 'csv', table: 'sales.orders', schema },
        { name: 'b', format: 'csv', table: 'customers', mode: 'upsert', key: ['code'], schema },
        {
          name: 'c',
          format: 'csv',
          table: 'sales.versions',
          publish: 'file',
          onNewVersion: 'replace',
          sourceColumn: 'file_id',
          schema,
        },
        {
          name: 'd',
          format: 'csv',
          schema,
          targets: [
            {
              table: 'shop.items',
              columns: { code: 'code' },
              references: {
                kind_id: { table: 'shop.kinds', key: { code: 'kind' } },
                order_id: { table: 'sales.orders', key: { code: 'code' } },
              },
              key: ['code'],
            },
          ],
        },
      ],
    });
    const plan = Object.fromEntries([...loaderTablePrivileges(datasets)].map(([t, p]) => [t, [...p].sort()]));
    expect(plan).toEqual({
      'sales.orders': ['INSERT', 'SELECT', 'UPDATE'],
      customers: ['INSERT', 'SELECT', 'UPDATE'],
      'sales.versions': ['DELETE', 'INSERT', 'SELECT', 'UPDATE'],
      'shop.items': ['INSERT', 'SELECT', 'UPDATE'],
      'shop.kinds': ['SELECT'],
    });
  });
});

describe('credentialsOf', () => {
  it('decodes the user and password of the connection string', () => {
    expect(
      credentialsOf({ connectionString: 'postgres://dropload_loader:a%2Fb%40c@db:5432/x', poolMax: 1 }),
    ).toEqual({
      name: 'dropload_loader',
      password: 'a/b@c',
    });
  });

  it('refuses a connection without a password', () => {
    expect(() => credentialsOf({ connectionString: 'postgres://dropload_loader@db/x', poolMax: 1 })).toThrow(
      ConfigError,
    );
  });
});

describe('databaseSettingsSource', () => {
  it('reads once, and again only when asked for fresh settings', async () => {
    const env: Record<string, string> = { DATABASE_URL: 'postgres://a@h/db' };
    const source = databaseSettingsSource(env);
    expect((await source()).connectionString).toBe('postgres://a@h/db');
    env.DATABASE_URL = 'postgres://b@h/db';
    expect((await source()).connectionString).toBe('postgres://a@h/db');
    expect((await source({ fresh: true })).connectionString).toBe('postgres://b@h/db');
    expect((await source()).connectionString).toBe('postgres://b@h/db');
  });

  it('does not keep a failed read', async () => {
    const env: Record<string, string> = {};
    const source = databaseSettingsSource(env);
    await expect(source()).rejects.toThrow('DATABASE_URL or DROPLOAD_DB_SECRET_ARN must be set');
    env.DATABASE_URL = 'postgres://a@h/db';
    expect((await source()).connectionString).toBe('postgres://a@h/db');
  });
});

describe('loaderSettings', () => {
  it('is undefined when no loader is given (migrate then manages no role)', async () => {
    expect(await loaderSettings({ DATABASE_URL: 'postgres://admin:x@h/db' })).toBeUndefined();
  });

  it("reads the loader's URL, with one connection and the stack's TLS setting", async () => {
    expect(
      await loaderSettings({
        DATABASE_URL: 'postgres://admin:x@h/db',
        DROPLOAD_LOADER_DATABASE_URL: 'postgres://loader:y@h/db',
        DROPLOAD_DB_SSL: 'require',
      }),
    ).toEqual({ connectionString: 'postgres://loader:y@h/db', poolMax: 1, ssl: true });
  });
});
