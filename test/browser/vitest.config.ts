/**
 * The browser end-to-end suite (npm run test:browser), apart from `npm test`: its files end in
 * .e2e.ts, which the main config (vitest.config.ts: test/**\/*.test.ts) does not collect.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  test: {
    include: ['test/browser/**/*.e2e.ts'],
    // One Chromium, driven step by step: the tests share its page and run in order.
    pool: 'forks',
    poolOptions: { forks: { singleFork: true } },
    fileParallelism: false,
    sequence: { concurrent: false },
    testTimeout: 900_000,
    hookTimeout: 180_000,
    reporters: ['default'],
  },
});
