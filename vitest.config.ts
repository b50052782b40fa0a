import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: worker-thread and child-process tests compete with each other; run files in a
    // small pool so timing-sensitive stress tests are not starved.
    maxWorkers: 2,
    pool: 'forks',
  },
});
