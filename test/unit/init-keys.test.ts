import { describe, expect, it } from 'vitest';
import { datasetModule } from '../../cli/init/codegen.ts';
import { FULL_PAIRS } from '../../cli/init/distinct-pairs.ts';
import { profileFile } from '../../cli/init/file-profile.ts';
import { columnsOf, inferRelationships, type Relationship } from '../../cli/init/relationships.ts';
import { inferTable, MIN_KEY_ROWS } from '../../cli/init/tables.ts';
import { snakeIdentifier } from '../../shared/config/column-names.ts';
import { inferredTables } from '../support/init-tables.ts';
import { tempFolder } from '../support/temp-folder.ts';

/**
 * Keys and relationships as a new user's GTFS, IMDb, Olist and Chinook exports showed them wrong: keys
 * guessed from a row or two (an upsert then merged real rows), 1:1 tables not related, sequence keys
 * not found, evidence that said what the names do not.
 */

const temp = tempFolder('dropload-init-keys-');
const tables = (files: Record<string, string>) => inferredTables(temp, files);

/** A CSV: its header, then `n` numbered rows. */
const csv = (header: string, n: number, row: (i: number) => string) =>
  `${header}\n${Array.from({ length: n }, (_, i) => row(i + 1)).join('\n')}\n`;

const rel = (x: Relationship) =>
  `${columnsOf(x.table, x.columns)} → ${columnsOf(x.parentTable, x.parentColumns)} ${x.certain}`;

const trips = csv('trip_id,route', 25, (i) => `t${i},r`);
const stops = csv('stop_id,name', 10, (i) => `s${i},n${i}`);

describe('a primary key needs evidence that makes uniqueness mean something', () => {
  it('a column naming another table, unique in a row or two, is no key: the dataset inserts, never merges', async () => {
    const t = await tables({
      'trips.csv': trips,
      'stops.csv': stops,
      'frequencies.csv': 'trip_id,start_time,headway_secs\nt1,08:00:00,300\nt2,15:00:00,600\n',
      'transfers.csv': 'from_stop_id,to_stop_id,transfer_type\ns1,s2,1\n',
      'feed_info.csv': 'feed_publisher_name,feed_contact_email\nSTA,contact@example.org\n',
      'calendar.csv': 'service_id,monday\nall-day,1\nweekend,0\nsummer,1\nwinter,0\n',
      'users.csv': 'name,email\nann,a@example.com\nann,b@example.com\n',
    });
    expect(t.map((x) => [x.name, x.primaryKey.join(', '), x.keyEvidence])).toEqual([
      ['trips', 'trip_id', 'trip_id: 25 values, all distinct, none null'],
      ['stops', 'stop_id', 'stop_id: 10 values, all distinct, none null'],
      [
        'frequencies',
        '',
        `none: trip_id unique in 2 rows only: too few to tell; it names trips, so it is a foreign key (a key not named after its table needs ${MIN_KEY_ROWS} rows)`,
      ],
      [
        'transfers',
        '',
        `none: from_stop_id unique in 1 row only: too few to tell; it names stops, so it is a foreign key; (from_stop_id, to_stop_id) unique in 1 row only: too few to tell (a key not named after its table needs ${MIN_KEY_ROWS} rows)`,
      ],
      [
        'feed_info',
        '',
        `none: feed_contact_email unique in 1 row only: too few to tell (a key not named after its table needs ${MIN_KEY_ROWS} rows)`,
      ],
      // Named as keys at any size: an id-like name naming no other table, a bare natural key.
      ['calendar', 'service_id', 'service_id: 4 values, all distinct, none null'],
      ['users', 'email', 'email: 2 values, all distinct, none null'],
    ]);
    const mode = (name: string) =>
      datasetModule(t.find((x) => x.name === name) as (typeof t)[number], undefined).text.includes(
        "mode: 'upsert'",
      );
    expect(['trips', 'frequencies', 'transfers', 'feed_info'].map(mode)).toEqual([true, false, false, false]);
    expect(inferRelationships(t).relationships.map(rel)).toEqual([
      'frequencies.trip_id → trips.trip_id true',
      'transfers.from_stop_id → stops.stop_id true',
      'transfers.to_stop_id → stops.stop_id true',
    ]);
  });

  it(`in ${MIN_KEY_ROWS} rows a column naming another table may be the key: one row per trip`, async () => {
    const frequencies = csv('trip_id,headway_secs', MIN_KEY_ROWS, (i) => `t${i},300`);
    const [, freq] = await tables({ 'trips.csv': trips, 'frequencies.csv': frequencies });
    expect([freq?.primaryKey, freq?.keyEvidence]).toEqual([
      ['trip_id'],
      `trip_id: ${MIN_KEY_ROWS} values, all distinct, none null`,
    ]);
  });
});

describe('1:1 tables', () => {
  it("a table's key of the same specific name as another's, its values among them, is a foreign key to it", async () => {
    const t = await tables({
      'title_basics.csv': csv('tconst,title', 25, (i) => `tt${i},T${i}`),
      'title_ratings.csv': csv('tconst,rating', 20, (i) => `tt${i},${i % 10}.5`),
      'title_episode.csv': csv(
        'tconst,parent_tconst,episode_number',
        20,
        (i) => `tt${i + 5},tt${(i % 3) + 1},${i}`,
      ),
    });
    expect(t.map((x) => [x.name, x.primaryKey])).toEqual([
      ['title_basics', ['tconst']],
      ['title_ratings', ['tconst']],
      ['title_episode', ['tconst']],
    ]);
    const r = inferRelationships(t);
    expect(r.relationships.map((x) => `${rel(x)}: ${x.evidence}`)).toEqual([
      "title_ratings.tconst → title_basics.tconst true: same column name; 20 distinct values, all among the 25 of title_basics.tconst; 1:1 (tconst is title_ratings's key too)",
      "title_episode.tconst → title_basics.tconst true: same column name; 20 distinct values, all among the 25 of title_basics.tconst; 1:1 (tconst is title_episode's key too)",
      "title_episode.parent_tconst → title_basics.tconst true: 'parent_tconst' ends in 'tconst', the key of title_basics; 3 distinct values, all among the 25 of title_basics.tconst",
    ]);
    // The parent's side of a 1:1 misses the titles nobody rated: not worth a line.
    expect(r.rejected.filter((x) => x.table === 'title_basics')).toEqual([]);
  });
});

describe('composite keys of a sequence', () => {
  it('(an id or the first column, a sequence-like column) is the key at any size, before a pair of ids', async () => {
    const t = await tables({
      'trips.csv': trips,
      'stops.csv': stops,
      'stop_times.csv': 'trip_id,stop_id,stop_sequence\nt1,s1,1\nt1,s2,2\nt2,s1,1\nt2,s2,2\n',
      'title_principals.csv':
        'tconst,ordering,nconst,category\ntt1,1,nm1,actor\ntt1,2,nm2,actress\ntt2,1,nm1,actor\n',
      'payments.csv': 'order_id,payment_sequential,payment_value\no1,1,9.5\no1,2,3\no2,1,7\n',
    });
    expect(t.slice(2).map((x) => [x.name, x.primaryKey.join(', '), x.keyEvidence])).toEqual([
      [
        'stop_times',
        'trip_id, stop_sequence',
        '(trip_id, stop_sequence): 4 rows, every pair distinct, none null',
      ],
      ['title_principals', 'tconst, ordering', '(tconst, ordering): 3 rows, every pair distinct, none null'],
      [
        'payments',
        'order_id, payment_sequential',
        '(order_id, payment_sequential): 3 rows, every pair distinct, none null',
      ],
    ]);
    // A sequence points nowhere: stop_sequence shares 'stop' with stops, and is no candidate for it.
    const r = inferRelationships(t);
    expect(r.relationships.map(rel)).toEqual([
      'stop_times.trip_id → trips.trip_id true',
      'stop_times.stop_id → stops.stop_id true',
    ]);
    expect(r.rejected.filter((x) => x.columns.includes('stop_sequence'))).toEqual([]);
  });
});

describe('a sequence pair past the bound of distinct pairs', () => {
  it('is no key, and the key evidence says its uniqueness was not checked', async () => {
    const p = await temp.file(
      'stop_times.csv',
      csv('trip_id,stop_sequence,arrival', 400, (i) => `t${Math.ceil(i / 40)},${i % 40},x`),
    );
    const profile = await profileFile(p, snakeIdentifier);
    // Past MAX_HASHED pairs (4,000,000: too many for a unit test to write) the profile drops its pairs' set.
    for (const pair of profile.pairs) pair.seen = undefined;
    const t = inferTable(profile, snakeIdentifier, []);
    expect([t.primaryKey, t.keyEvidence]).toEqual([
      [],
      `none: (trip_id, stop_sequence): ${FULL_PAIRS}, uniqueness not checked`,
    ]);
  });
});

describe('evidence says only what the names say', () => {
  it("no parent from a small table's unique column, no self-reference to a non-key, no shared part that is no word, no flag", async () => {
    const t = await tables({
      'employees.csv': csv(
        'employee_id,reports_to,postal_code',
        8,
        (i) => `${i},${i === 1 ? '' : Math.ceil(i / 3)},${i === 2 ? '2010' : `T${i}P 2T3`}`,
      ),
      'invoices.csv': csv('invoice_id,billing_postal_code', 30, (i) => `${i},${i % 2 ? '2010' : 'T3P 2T3'}`),
      'transfers.csv': csv('transfer_id,kind', 25, (i) => `x${i},k`),
      'translations.csv': csv('table_name,translation', 25, (i) => `stops,Eingang ${i}`),
      'pathways.csv': csv('pathway_id,mode', 6, (i) => `${i - 1},1`),
      'calendar.csv': csv('service_id,monday', 4, (i) => `c${i},${i % 2}`),
      'order_events.csv': csv('event_id,order_id', 30, (i) => `${i},o${i}`),
      'order_items.csv': csv(
        'order_id,order_item_id,price',
        30,
        (i) => `o${Math.ceil(i / 3)},${((i - 1) % 3) + 1},1.5`,
      ),
    });
    const r = inferRelationships(t);
    expect(r.relationships.map((x) => `${rel(x)}: ${x.evidence}`)).toEqual([
      "employees.reports_to → employees.employee_id true: 'reports_to' names another row of employees (a self-reference); 3 distinct values, all among the 8 of employees.employee_id",
      'order_items.order_id → order_events.order_id true: same column name; 10 distinct values, all among the 30 of order_events.order_id',
    ]);
    // What is left are the overlaps of order_item_id (1..3) with small keys, said as such; no
    // 'billing_postal_code names employees', no 'translation shares trans', no monday (0/1) line.
    expect(
      new Set(r.rejected.map((x) => `${columnsOf(x.table, x.columns)}: ${x.reason.split(', but ')[1]}`)),
    ).toEqual(
      new Set(['order_items.order_item_id: the names are unrelated: value overlap alone is no relationship']),
    );
  });
});
