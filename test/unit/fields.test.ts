import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { snakeIdentifier } from '../../shared/config/column-names.ts';
import {
  bigintText,
  boolean,
  date,
  decimal,
  integer,
  localTimestamp,
  numeric,
  snakeCase,
  timestamp,
} from '../../shared/config/index.ts';
import { ConfigError } from '../../shared/core/errors.ts';

const issue = (schema: z.ZodType, value: unknown) => {
  const r = schema.safeParse(value);
  return r.success ? undefined : r.error.issues[0]?.message;
};

describe('strict field types', () => {
  it('integer: decimal digits only, in the safe range; numbers from NDJSON pass', () => {
    expect(integer().parse(' 42 ')).toBe(42);
    expect(integer().parse('-7')).toBe(-7);
    expect(integer().parse(9001)).toBe(9001);
    for (const bad of ['', ' ', '0x10', '1e3', '1.5', '9007199254740993', 'abc', 1.5]) {
      expect(issue(integer(), bad), String(bad)).toBe('not a whole number');
    }
  });

  it('decimal: plain and exponent notation, nothing else', () => {
    expect(decimal().parse('12')).toBe(12);
    expect(decimal().parse('-0.5')).toBe(-0.5);
    expect(decimal().parse('.25')).toBe(0.25);
    expect(decimal().parse('1e3')).toBe(1000);
    for (const bad of ['', ' ', '0x10', '1,000', 'NaN', 'Infinity', '1.2.3']) {
      expect(issue(decimal(), bad), bad).toBe('not a decimal number');
    }
  });

  it('bigintText keeps digits beyond 2^53 as text', () => {
    expect(bigintText().parse('9007199254740993')).toBe('9007199254740993');
    expect(issue(bigintText(), '12a')).toBe('not a whole number');
  });

  it('date and time helpers name the part that does not exist, not a zone the text has', () => {
    const cases: [z.ZodType, string, string][] = [
      [
        timestamp(),
        '2016-12-31T23:59:60Z',
        'no such time: second 60 (a leap second, which no timestamp type keeps)',
      ],
      [timestamp(), '2024-02-30T00:00:00Z', 'no such date: February 30'],
      [timestamp(), '2023-02-29T00:00:00Z', 'no such date: February 29 in 2023'],
      [timestamp(), '2024-01-01T24:00:00Z', 'no such time: hour 24'],
      [timestamp(), '2024-13-01T00:00:00Z', 'no such date: month 13'],
      [timestamp(), '0000-01-01T00:00:00Z', 'no such date: year 0 (the year before 1 is 1 BC)'],
      [timestamp(), '2024-01-01T10:00:00', 'not an ISO timestamp with a time zone (Z or +hh:mm)'],
      [localTimestamp(), '2024-04-31 10:00', 'no such date: April 31'],
      [date(), '2024-02-30', 'no such date: February 30'],
      [date(), '0000-01-01', 'no such date: year 0 (the year before 1 is 1 BC)'],
    ];
    for (const [schema, text, reason] of cases) expect(issue(schema, text), text).toBe(reason);
  });

  it('decimal: a nonzero literal that a double holds as 0 or Infinity is refused, not stored as 0', () => {
    expect(issue(decimal(), '1e-400')).toBe(
      'too small for a double, it would be stored as 0 (got "1e-400"): use numeric()',
    );
    expect(issue(decimal(), '-0.5e-400')).toBe(
      'too small for a double, it would be stored as 0 (got "-0.5e-400"): use numeric()',
    );
    expect(issue(decimal(), '1e400')).toBe('beyond the range of a double (got "1e400"): use numeric()');
    expect(decimal().parse('0e-400')).toBe(0);
    expect(decimal().parse('0.000')).toBe(0);
  });

  it('timestamp: needs a time zone, so a file means one instant everywhere', () => {
    expect(timestamp().parse('2026-11-27T10:00:00Z')).toEqual(new Date('2026-11-27T10:00:00Z'));
    expect(timestamp().parse('2026-11-27T11:00:00+01:00')).toEqual(new Date('2026-11-27T10:00:00Z'));
    for (const bad of ['2026-11-27T10:00:00', '2026-11-27', 'yesterday', '']) {
      expect(issue(timestamp(), bad), bad).toBe('not an ISO timestamp with a time zone (Z or +hh:mm)');
    }
  });

  it('optional fields still take "no value"', () => {
    expect(integer().optional().parse(undefined)).toBeUndefined();
  });

  it('numeric: every digit kept as text, plain or exponent notation written out', () => {
    expect(numeric().parse('12345678901234567.89')).toBe('12345678901234567.89');
    const read: [string | number | bigint, string][] = [
      ['12', '12'],
      [' -0.5 ', '-0.5'],
      ['+3', '3'],
      ['.5', '0.5'],
      ['12.', '12'],
      ['007.50', '7.50'],
      ['-0.00', '0.00'],
      ['1e3', '1000'],
      ['2.5E-3', '0.0025'],
      ['-1.25e+2', '-125'],
      ['1.50e1', '15'],
      [0.1, '0.1'],
      [-42, '-42'],
      [1e21, '1000000000000000000000'],
      [9007199254740993n, '9007199254740993'],
    ];
    for (const [input, out] of read) expect(numeric().parse(input), String(input)).toBe(out);
    for (const bad of [
      '',
      ' ',
      '.',
      '-',
      '0x10',
      '1,000',
      '1 000',
      'NaN',
      'Infinity',
      '1.2.3',
      '1e',
      'e3',
      '1e99999999',
    ]) {
      expect(issue(numeric(), bad), bad).toBe('not a decimal number');
    }
  });

  it('numeric(p, s): a value that does not fit is refused, not rounded', () => {
    const money = numeric({ precision: 12, scale: 2 });
    expect(money.parse('9999999999.99')).toBe('9999999999.99');
    expect(money.parse('-12.5')).toBe('-12.5');
    expect(money.parse('12.500')).toBe('12.500');
    expect(money.parse('0.1e1')).toBe('1');
    expect(issue(money, '1.005')).toBe('3 decimals where numeric(12,2) keeps 2 (refused, not rounded)');
    expect(issue(money, '12345678901')).toBe(
      '11 digits before the decimal point where numeric(12,2) allows 10',
    );
    expect(issue(money, 'abc')).toBe('not a decimal number');
    expect(numeric({ precision: 3 }).parse('999')).toBe('999');
    expect(issue(numeric({ precision: 3 }), '1.5')).toBe(
      '1 decimal where numeric(3,0) keeps 0 (refused, not rounded)',
    );
    const bad = (opts: Parameters<typeof numeric>[0]) => () => numeric(opts);
    expect(bad({ scale: 2 })).toThrow(new ConfigError('numeric(): scale needs a precision'));
    expect(bad({ precision: 0 })).toThrow(
      new ConfigError('numeric(): precision must be a whole number from 1 to 1000 (got 0)'),
    );
    expect(bad({ precision: 4, scale: 5 })).toThrow(
      new ConfigError('numeric(): scale must be a whole number from 0 to the precision (got 5)'),
    );
  });

  it('numeric: an NDJSON number is the shortest text of the double JSON.parse made of it', () => {
    const record = JSON.parse('{"exact": "12345678901234567.89", "number": 12345678901234567.89}');
    expect(numeric().parse(record.exact)).toBe('12345678901234567.89');
    expect(numeric().parse(record.number)).toBe('12345678901234568');
  });

  it('decimal is still a double: numeric() is what keeps the digits', () => {
    expect(decimal().parse('12345678901234567.89')).toBe(12345678901234568);
  });

  it('date: a calendar date as its text', () => {
    expect(date().parse('2026-02-28')).toBe('2026-02-28');
    expect(date().parse('2024-02-29')).toBe('2024-02-29');
    expect(date().parse(' 1996-07-04 ')).toBe('1996-07-04');
    expect(issue(date(), '2026-02-29')).toBe('no such date: February 29 in 2026');
    expect(issue(date(), '2026-13-01')).toBe('no such date: month 13');
    expect(issue(date(), '2026-04-31')).toBe('no such date: April 31');
    for (const bad of ['2026-1-01', '20260101', '2026-01-01T00:00', '', 20260101]) {
      expect(issue(date(), bad), String(bad)).toBe('not a date (YYYY-MM-DD)');
    }
  });

  it("date({ format: 'YYYYMMDD' }): ISO 8601's basic format, calendar dates only, as YYYY-MM-DD", () => {
    const basic = date({ format: 'YYYYMMDD' });
    expect(basic.parse('20240131')).toBe('2024-01-31');
    expect(basic.parse('20240229')).toBe('2024-02-29');
    expect(basic.parse(' 19960704 ')).toBe('1996-07-04');
    expect(basic.parse(20240131)).toBe('2024-01-31');
    const refused: [string, string][] = [
      ['20240230', 'not a calendar date: 2024-02 has no day 30 (it has 29)'],
      ['20230229', 'not a calendar date: 2023-02 has no day 29 (it has 28)'],
      ['20240431', 'not a calendar date: 2024-04 has no day 31 (it has 30)'],
      ['20240100', 'not a calendar date: 2024-01 has no day 00 (it has 31)'],
      ['20241301', 'not a calendar date: there is no month 13'],
      ['20240001', 'not a calendar date: there is no month 00'],
      ['00000101', 'not a calendar date: there is no year 0000'],
    ];
    for (const [bad, message] of refused) expect(issue(basic, bad), bad).toBe(message);
    for (const bad of ['2024-01-31', '2024131', '202401311', '+2024013', '2024013x', '', 2024013]) {
      expect(issue(basic, bad), String(bad)).toBe('not a date (YYYYMMDD)');
    }
    expect(date({ format: 'YYYY-MM-DD' }).parse('2024-01-31')).toBe('2024-01-31');
    expect(issue(date(), '20240131')).toBe('not a date (YYYY-MM-DD)');
  });

  it('date and localTimestamp options: their spec refuses what they do not take', () => {
    const bad = (options: unknown) => () => date(options as Parameters<typeof date>[0]);
    expect(bad({ format: 'DDMMYYYY' })).toThrow(
      new ConfigError('date(): format: Invalid option: expected one of "YYYY-MM-DD"|"YYYYMMDD"'),
    );
    expect(bad({ fromat: 'YYYYMMDD' })).toThrow(
      new ConfigError('date(): (root): Unrecognized key: "fromat"'),
    );
    const lt = (options: unknown) => () => localTimestamp(options as Parameters<typeof localTimestamp>[0]);
    expect(lt({ dateOnly: 'noon' })).toThrow(
      new ConfigError('localTimestamp(): dateOnly: Invalid option: expected one of "refuse"|"midnight"'),
    );
  });

  it("localTimestamp({ dateOnly: 'midnight' }): a date alone is that day's 00:00, zoneless", () => {
    const midnight = localTimestamp({ dateOnly: 'midnight' });
    expect(midnight.parse('2024-01-05')).toBe('2024-01-05T00:00:00');
    expect(midnight.parse('2024-01-05 10:00:00')).toBe('2024-01-05T10:00:00');
    expect(midnight.parse('2024-01-05T10:00:00+02:00')).toBe('2024-01-05T10:00:00+02:00');
    const message =
      'not a timestamp (YYYY-MM-DD HH:MM[:SS[.fff]], optionally with Z or an offset) or a date (YYYY-MM-DD)';
    // A text shaped like a date that names none says what no calendar has (as every date field does).
    expect(issue(midnight, '2024-02-30')).toBe('no such date: February 30');
    expect(issue(midnight, '0000-01-01')).toBe('no such date: year 0 (the year before 1 is 1 BC)');
    expect(issue(midnight, '2024-01-05 25:00')).toBe('no such time: hour 25');
    for (const bad of ['20240105', '']) {
      expect(issue(midnight, bad), bad).toBe(message);
    }
    expect(issue(localTimestamp({ dateOnly: 'refuse' }), '2024-01-05')).toBe(
      'not a timestamp (YYYY-MM-DD HH:MM[:SS[.fff]], optionally with Z or an offset)',
    );
  });

  it('localTimestamp: with or without a zone, normalized to the text Postgres reads', () => {
    const read: [string, string][] = [
      ['1996-07-04 00:00:00.000', '1996-07-04T00:00:00.000'],
      ['1996-07-04T00:00:00', '1996-07-04T00:00:00'],
      ['1996-07-04 13:45', '1996-07-04T13:45:00'],
      ['1996-07-04t13:45:01.123456789', '1996-07-04T13:45:01.123456789'],
      ['1996-07-04T00:00:00Z', '1996-07-04T00:00:00Z'],
      ['1996-07-04 00:00:00z', '1996-07-04T00:00:00Z'],
      ['1996-07-04T00:00:00+02:00', '1996-07-04T00:00:00+02:00'],
      ['1996-07-04T00:00:00-0530', '1996-07-04T00:00:00-0530'],
      ['1996-07-04T00:00:00+02', '1996-07-04T00:00:00+02'],
    ];
    for (const [input, out] of read) expect(localTimestamp().parse(input), input).toBe(out);
    expect(issue(localTimestamp(), '1996-02-30 00:00:00')).toBe('no such date: February 30');
    expect(issue(localTimestamp(), '1996-07-04 24:00:00')).toBe('no such time: hour 24');
    expect(issue(localTimestamp(), '1996-07-04 12:60')).toBe('no such time: minute 60');
    expect(issue(localTimestamp(), '1996-07-04 12:00:60')).toMatch(/^no such time: second 60/);
    const message = 'not a timestamp (YYYY-MM-DD HH:MM[:SS[.fff]], optionally with Z or an offset)';
    for (const bad of [
      '1996-07-04',
      '1996-07-04T00:00:00+25:00',
      '1996-07-04T00:00:00 Europe/Berlin',
      '04/07/1996 00:00',
      '',
      0,
    ]) {
      expect(issue(localTimestamp(), bad), String(bad)).toBe(message);
    }
  });

  it('boolean: the usual spellings in any case', () => {
    for (const yes of ['true', 'TRUE', 't', 'T', '1', 'yes', 'Yes', 'y', 'Y', 1, true]) {
      expect(boolean().parse(yes), String(yes)).toBe(true);
    }
    for (const no of ['false', 'False', 'f', '0', 'no', 'NO', 'n', 0, false]) {
      expect(boolean().parse(no), String(no)).toBe(false);
    }
    for (const bad of ['', 'on', 'off', '2', 'truthy', 2]) {
      expect(issue(boolean(), bad), String(bad)).toBe('not a boolean (true/false, t/f, 1/0, yes/no, y/n)');
    }
  });

  it('snakeCase: column names from field names', () => {
    const cases: [string, string][] = [
      ['customerID', 'customer_id'],
      ['OrderDate', 'order_date'],
      ['shipVia', 'ship_via'],
      ['HTTPStatus', 'http_status'],
      ['unit price', 'unit_price'],
      ['Product-Name', 'product_name'],
      ['employee_id', 'employee_id'],
      ['address2', 'address2'],
      ['line2Total', 'line2_total'],
      ['ID', 'id'],
      // Letters and a leading digit kept, as tables made with these names have them.
      ['Müller', 'müller'],
      ['Straße', 'straße'],
      ['2024 total', '2024_total'],
      ['prix €', 'prix'],
    ];
    for (const [field, column] of cases) {
      expect(snakeCase(field), field).toBe(column);
      if (/^[a-z_][a-z0-9_]*$/.test(column)) expect(snakeIdentifier(field), field).toBe(column);
    }
  });

  it("snakeIdentifier: init's names, always a SQL identifier the dataset spec accepts", () => {
    // As dlt's snake_case makes them.
    const cases: [string, string][] = [
      ['customerID', 'customer_id'],
      ['08-traildelim', '_08_traildelim'],
      ['2024 total', '_2024_total'],
      ['21 fünny Ñame', '_21_funny_name'],
      ['Straße', 'stra_e'],
      ['prix €', 'prix'],
    ];
    for (const [field, column] of cases) expect(snakeIdentifier(field), field).toBe(column);
  });
});
