import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // each integration file starts its own clusters; two cores do not want more in flight
    maxWorkers: 2,
    reporters: ['default'],
  },
});
