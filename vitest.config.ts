import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Each test file gets its own process and its own Dawn device; two at a time on 2 cores.
    pool: 'forks',
    // --expose-gc lets memory tests collect earlier tests' dropped tensors before a baseline.
    poolOptions: { forks: { maxForks: 2, minForks: 1, execArgv: ['--expose-gc'] } },
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
