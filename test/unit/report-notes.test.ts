import { describe, expect, it } from 'vitest';
import { type FileReport, fileNotes } from '../../cli/report.ts';

const report = (tables: FileReport['tables']): FileReport => ({
  key: 'incoming/tracks/tracks.csv',
  dataset: 'tracks',
  state: 'loaded',
  chunks: { done: 1, total: 1 },
  rows: { read: 3, loaded: 3, inserted: 3, updated: 0, unchanged: 0, waiting: 0, rejected: 0, open: 0 },
  seconds: 1,
  error: null,
  rejects: [],
  ...(tables ? { tables } : {}),
});

describe('the notes under a file in status', () => {
  it("rows per table only for a file whose rows went to several tables: one table's counts are the file's", () => {
    const one = [{ table: 'tracks', inserted: 3, updated: 0, unchanged: 0 }];
    const two = [...one, { table: 'albums', inserted: 1, updated: 0, unchanged: 2 }];
    expect(fileNotes(report(one))).toEqual([]);
    expect(fileNotes(report(two)).map((n) => n.line)).toEqual([
      'incoming/tracks/tracks.csv: rows per table: tracks 3 inserted, 0 updated, 0 unchanged; albums 1 inserted, 0 updated, 2 unchanged',
    ]);
  });
});
