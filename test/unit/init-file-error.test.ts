import { describe, expect, it } from 'vitest';
import { refusalReason } from '../../cli/init/file-error.ts';
import { FileRejectedError, TableShapeError } from '../../shared/core/errors.ts';

/** Which failures refuse one file (the loader's permanent file errors) and which still fail init. */
describe('refusalReason', () => {
  const coded = (message: string, code: string) => Object.assign(new Error(message), { code });

  it("gives a file error's own message", () => {
    expect(refusalReason(new FileRejectedError('file is empty (0 bytes)'))).toBe('file is empty (0 bytes)');
    expect(refusalReason(new TableShapeError('no table'))).toBe('no table');
  });

  it("gives zlib's and an unreadable file's failures the loader's words", () => {
    expect(refusalReason(coded('unexpected end of file', 'Z_BUF_ERROR'))).toBe(
      'gzip data is corrupt or truncated: unexpected end of file',
    );
    expect(refusalReason(coded("EACCES: permission denied, open 'a.csv'", 'EACCES'))).toBe(
      "file cannot be read: EACCES: permission denied, open 'a.csv'",
    );
  });

  it('throws anything else again: a bug, a setup problem, even one whose message says "invalid"', () => {
    const bug = new TypeError('Invalid array length');
    expect(() => refusalReason(bug)).toThrow(bug);
    const setup = coded('connect ECONNREFUSED', 'ECONNREFUSED');
    expect(() => refusalReason(setup)).toThrow(setup);
    expect(() => refusalReason('a string')).toThrow('a string');
  });
});
