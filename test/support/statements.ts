import type { KyselyPlugin } from 'kysely';

/** The statements a write sends, counted as Kysely compiles them (COPY included). */
export function counting(): { plugin: KyselyPlugin; statements: () => number } {
  let n = 0;
  return {
    plugin: {
      transformQuery: (args) => {
        n++;
        return args.node;
      },
      transformResult: async (args) => args.result,
    },
    statements: () => n,
  };
}
