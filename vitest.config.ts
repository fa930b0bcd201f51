import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Built-package checks, in vitest.runtimes.config.ts (npm run test:runtimes).
    exclude: ['test/runtimes/**', 'test/package/**', '**/node_modules/**'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
