/**
 * `npm run test:runtimes` (after `npm run build`): the runtime suite (test/runtimes/suite.ts) on the
 * built package in Node (ESM and CommonJS), headless Chromium and workerd, plus the packed-tarball
 * check (test/package/). Deno and Bun run the same suite with their own test runners.
 */
import { cloudflareTest } from '@cloudflare/vitest-plugin';
import { playwright } from '@vitest/browser-playwright';
import { defineConfig } from 'vitest/config';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from './test/runtimes/chromium.ts';


export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 120_000,
    projects: [
      {
        test: { name: 'node', include: ['test/runtimes/node.test.ts', 'test/package/*.test.ts'], testTimeout: 600_000, hookTimeout: 600_000 },
      },
      {
        test: {
          name: 'chromium',
          include: ['test/runtimes/browser.test.ts'],
          browser: {
            enabled: true,
            headless: true,
            provider: playwright({ launchOptions: { executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS } }),
            instances: [{ browser: 'chromium' }],
          },
        },
      },
      {
        // `enorm` resolves to the package itself (devDependency "enorm": "file:."), with workerd's conditions.
        plugins: [cloudflareTest({ miniflare: { compatibilityDate: '2026-11-01', modulesRules: [{ type: 'CompiledWasm', include: ['**/*.wasm'] }] } })],
        test: { name: 'workerd', include: ['test/runtimes/workerd.test.ts'] },
      },
    ],
  },
});
