import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**', 'dist/**'],
    // Builds the engine (once per machine, cached), the demo model and dist/ for CLI tests.
    globalSetup: ['tests/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // 2 cores: end-to-end files each run a real engine; two at a time is what the machine holds.
    maxWorkers: 2,
  },
});
