import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  classifyError,
  errorMessage,
  FileRejectedError,
  isConnectionLoss,
  MigrationError,
  sqlState,
  TableShapeError,
  TransientError,
  UsageError,
} from '../../shared/core/errors.ts';

/** A pg-style error: an Error carrying a SQLSTATE in `code`. */
const pgError = (code: string, message = `error ${code}`) => Object.assign(new Error(message), { code });

describe('classifyError', () => {
  it.each([
    ['40001', 'serialization_failure'],
    ['40P01', 'deadlock_detected'],
    ['53300', 'too_many_connections'],
    ['53100', 'disk_full'],
    ['57P01', 'admin_shutdown'],
    ['57P02', 'crash_shutdown'],
    ['57P03', 'cannot_connect_now'],
    ['08006', 'connection_failure'],
    ['08001', 'sqlclient_unable_to_establish_sqlconnection'],
    ['55P03', 'lock_not_available'],
    ['57014', 'query_canceled'],
  ])('SQLSTATE %s (%s) is transient', (code) => {
    expect(classifyError(pgError(code))).toBe('transient');
  });

  it.each([
    ['22P02', 'invalid_text_representation'],
    ['22001', 'string_data_right_truncation'],
    ['22003', 'numeric_value_out_of_range'],
    ['23505', 'unique_violation'],
    ['23502', 'not_null_violation'],
    ['23514', 'check_violation'],
  ])('SQLSTATE %s (%s) is data', (code) => {
    expect(classifyError(pgError(code))).toBe('data');
  });

  it.each([
    ['42P01', 'undefined_table'],
    ['42703', 'undefined_column'],
    ['42501', 'insufficient_privilege'],
    ['57P04', 'database_dropped'],
    ['XX000', 'internal_error'],
  ])('SQLSTATE %s (%s) is fatal', (code) => {
    expect(classifyError(pgError(code))).toBe('fatal');
  });

  it('classifies a SQLSTATE on a plain object the same as on an Error', () => {
    expect(classifyError({ code: '40001' })).toBe('transient');
    expect(classifyError({ code: '23505' })).toBe('data');
    expect(classifyError({ code: '42P01' })).toBe('fatal');
  });

  it.each(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH'])(
    'node code %s is transient',
    (code) => {
      expect(classifyError({ code })).toBe('transient');
      expect(classifyError(Object.assign(new Error('socket'), { code }))).toBe('transient');
    },
  );

  it('reads AWS SDK fields: 5xx status, $retryable, throttling and timeout names', () => {
    expect(classifyError({ $metadata: { httpStatusCode: 503 } })).toBe('transient');
    expect(classifyError({ $metadata: { httpStatusCode: 500 } })).toBe('transient');
    expect(classifyError({ $retryable: { throttling: true } })).toBe('transient');
    expect(classifyError(Object.assign(new Error('rate'), { name: 'ThrottlingException' }))).toBe(
      'transient',
    );
    expect(classifyError({ name: 'SlowDown' })).toBe('transient');
    expect(classifyError({ name: 'RequestTimeout' })).toBe('transient');
    expect(classifyError({ name: 'TimeoutError' })).toBe('transient');
  });

  it('does not retry AWS client errors', () => {
    expect(classifyError({ name: 'AccessDenied', $metadata: { httpStatusCode: 403 } })).toBe('fatal');
    expect(classifyError({ name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } })).toBe('fatal');
    expect(classifyError({ $metadata: { httpStatusCode: 499 } })).toBe('fatal');
  });

  it('reads pg connection messages as transient', () => {
    expect(classifyError(new Error('Connection terminated unexpectedly'))).toBe('transient');
    expect(classifyError(new Error('timeout exceeded when trying to connect'))).toBe('transient');
    expect(classifyError(new Error('Client has encountered a connection error and is not queryable'))).toBe(
      'transient',
    );
    expect(classifyError(new Error('socket hang up'))).toBe('transient');
  });

  it('classifies dropload errors by class', () => {
    expect(classifyError(new FileRejectedError('empty'))).toBe('file');
    expect(classifyError(new TransientError('later'))).toBe('transient');
    expect(classifyError(new ConfigError('bad'))).toBe('fatal');
  });

  it('fails the file on a table shape, and stops on usage and migration errors', () => {
    expect(classifyError(new TableShapeError('table t has no column c'))).toBe('file');
    expect(classifyError(new UsageError('--dataset x: no such dataset'))).toBe('fatal');
    expect(classifyError(new MigrationError('ledger migration failed'))).toBe('fatal');
    expect(errorMessage(new UsageError('u'))).toBe('UsageError: u');
  });

  it('lets everything else through as fatal', () => {
    expect(classifyError(new Error('boom'))).toBe('fatal');
    expect(classifyError(new TypeError('x is undefined'))).toBe('fatal');
    expect(classifyError(null)).toBe('fatal');
    expect(classifyError(undefined)).toBe('fatal');
    expect(classifyError('a string')).toBe('fatal');
    expect(classifyError({ code: 'ENOENT' })).toBe('fatal');
    expect(classifyError({ code: 40001 })).toBe('fatal');
  });
});

describe('sqlState', () => {
  it('returns a five-character SQLSTATE and nothing else', () => {
    expect(sqlState(pgError('23505'))).toBe('23505');
    expect(sqlState({ code: '40P01' })).toBe('40P01');
    expect(sqlState({ code: 'ECONNREFUSED' })).toBeUndefined();
    expect(sqlState({ code: '2350' })).toBeUndefined();
    expect(sqlState({ code: 23505 })).toBeUndefined();
    expect(sqlState(null)).toBeUndefined();
    expect(sqlState(undefined)).toBeUndefined();
  });
});

describe('errorMessage', () => {
  it('prefixes the error name', () => {
    expect(errorMessage(new FileRejectedError('file is empty (0 bytes)'))).toBe(
      'FileRejectedError: file is empty (0 bytes)',
    );
    expect(errorMessage(new ConfigError('x'))).toBe('ConfigError: x');
    expect(errorMessage(new TransientError('y'))).toBe('TransientError: y');
    expect(errorMessage(new Error('z'))).toBe('Error: z');
    expect(errorMessage('plain')).toBe('plain');
    expect(errorMessage(42)).toBe('42');
  });
});

describe('isConnectionLoss', () => {
  it('is the database being away, not one statement refused', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    expect(
      [
        refused,
        pgError('08006'),
        pgError('57P01'),
        new Error('Connection terminated unexpectedly'),
        pgError('55P03'),
        pgError('40001'),
        pgError('23505'),
        new TransientError('chunk queue refused 1 message(s)'),
      ].map(isConnectionLoss),
    ).toEqual([true, true, true, true, false, false, false, false]);
  });
});
