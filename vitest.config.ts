// Test runner configuration: separate processes per file, generous hooks for PGlite and llama start-up.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    globalSetup: ['test/helpers/global_setup.ts'],
    reporters: ['default'],
  },
});
