import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Built-package checks, in vitest.runtimes.config.ts (npm run test:runtimes).
    exclude: ['test/runtimes/**', 'test/package/**', '**/node_modules/**'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Child processes, not threads: a worker's LD_LIBRARY_PATH (the bundled Vulkan loader, set by
    // the global setup) only takes effect when its process starts.
    pool: 'forks',
    globalSetup: ['scripts/webgpu-global-setup.ts'],
  },
});
