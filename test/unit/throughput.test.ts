import { describe, expect, it } from 'vitest';
import { spreadRows } from '../../shared/ledger/throughput.ts';

describe('spreadRows', () => {
  it("spreads a chunk over the seconds it took: the trial's 170,000 rows in 17 s are 10,000 rows/s", () => {
    const points = spreadRows([{ rows: 170_000, start: 1000, end: 1017 }], 900, 1100);
    expect(points).toHaveLength(17);
    expect(points[0]).toEqual({ second: 1000, rows: 10_000 });
    expect(points[16]).toEqual({ second: 1016, rows: 10_000 });
    expect(new Set(points.map((p) => p.rows))).toEqual(new Set([10_000]));
  });

  it('splits a chunk at second boundaries by the share of each second it covers, and adds overlapping chunks', () => {
    const chunks = [
      { rows: 400, start: 10.5, end: 12.5 }, // 200 rows/s
      { rows: 100, start: 11.75, end: 12 }, // 400 rows/s for a quarter second
    ];
    expect(spreadRows(chunks, 0, 100)).toEqual([
      { second: 10, rows: 100 },
      { second: 11, rows: 300 },
      { second: 12, rows: 100 },
    ]);
  });

  it('counts a chunk with no duration (loaded before started_at existed) whole in the second it committed', () => {
    expect(
      spreadRows(
        [
          { rows: 7, start: 20.25, end: 20.25 },
          { rows: 3, start: 30.5, end: 30 },
        ],
        0,
        100,
      ),
    ).toEqual([
      { second: 20, rows: 7 },
      { second: 30, rows: 3 },
    ]);
  });

  it('keeps only the seconds of the window, both ends included', () => {
    const chunks = [{ rows: 8, start: 98, end: 106 }]; // 1 row/s
    expect(spreadRows(chunks, 100, 103)).toEqual([
      { second: 100, rows: 1 },
      { second: 101, rows: 1 },
      { second: 102, rows: 1 },
      { second: 103, rows: 1 },
    ]);
    expect(spreadRows([{ rows: 5, start: 50, end: 50 }], 51, 60)).toEqual([]);
  });
});
