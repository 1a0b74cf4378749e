import { defineConfig } from 'vitest/config';

export default defineConfig({
  // `import … from 'dropload'` (dropload.config.ts, samples/, test configs) means this repository's sources.
  // Tests run in Vite's server-side environment, which takes its own conditions.
  resolve: { conditions: ['source'] },
  ssr: { resolve: { conditions: ['source'], externalConditions: ['source'] } },
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests share one Postgres database; files run one at a time so their tables don't collide.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    globalSetup: ['test/support/global-database.ts'],
  },
});
