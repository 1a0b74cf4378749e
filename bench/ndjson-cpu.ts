// CPU seconds to parse and validate 1M NDJSON rows with a nested document through chunkRows (no
// database): `npx node bench/ndjson-cpu.ts [checkout]`; `SHORT=1` makes the document's double a short one.
// A checkout to measure (default: this one), so a branch and main run the same rows.
const root = process.argv[2] ?? new URL('..', import.meta.url).pathname.replace(/\/$/, '');
const { chunkRows } = await import(`${root}/shared/load/chunk-rows.ts`);
const { defineDataset } = await import(`${root}/shared/config/dataset.ts`);
const { resolveConfig } = await import(`${root}/shared/config/config.ts`);
const { z } = await import(`${root}/node_modules/zod/index.js`);
const dataset = resolveConfig(
  {
    datasets: [
      defineDataset({
        name: 'b',
        format: 'ndjson',
        table: 't',
        schema: z.object({
          id: z.number().int(),
          name: z.string(),
          amount: z.number(),
          doc: z.unknown().optional(),
        }),
      }),
    ],
  },
  'bench',
).datasets[0];
const ROWS = 1_000_000;
const lines: string[] = [];
for (let i = 0; i < ROWS; i++)
  lines.push(
    JSON.stringify({
      id: i,
      name: `customer ${i}`,
      amount: Math.round(i * 1.37) / 100,
      doc: {
        tags: ['a', 'b'],
        score: process.env.SHORT ? (i % 997) / 8 : (i % 997) / 7,
        at: '2024-03-01T10:00:00Z',
        n: { x: i, y: i * 3 },
      },
    }),
  );
const enc = new TextEncoder();
const chunks: Uint8Array[] = [];
for (let i = 0; i < ROWS; i += 50_000) chunks.push(enc.encode(`${lines.slice(i, i + 50_000).join('\n')}\n`));
const best: number[] = [];
for (let round = 0; round < 3; round++) {
  const t = process.cpuUsage();
  let rows = 0;
  for (const [i, bytes] of chunks.entries()) {
    const pass = chunkRows(dataset, bytes, { format: 'ndjson', delimiter: ',', firstLine: i * 50_000 + 1 })();
    while (pass.next()) rows++;
  }
  const u = process.cpuUsage(t);
  best.push((u.user + u.system) / 1e6);
  if (rows !== ROWS) throw new Error(`rows ${rows}`);
}
console.log(`${root}: CPU s per 1M rows, 3 rounds: ${best.map((s) => s.toFixed(2)).join(' ')}`);
