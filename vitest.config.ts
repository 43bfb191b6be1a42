import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // One process at a time: lavapipe already uses both cores, and Dawn devices are per process.
    pool: 'forks',
    poolOptions: { forks: { singleFork: true } },
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ['default'],
    // Tests stay deterministic and fast: no kernel tuning in CLI commands they run (in-process or
    // spawned, which inherit this); test/unit/tuning.test.ts drives autotune itself.
    env: { WEBVLSM_TUNING: 'off' },
  },
});
