/** The runtime suite in headless Chromium (vitest browser mode) on the browser bundle dist/browser/enorm.js. */
import { describe, it } from 'vitest';
import { CASES, type Enorm } from './suite.ts';

const bundle = new URL('../../dist/browser/enorm.js', import.meta.url).href;

describe(`Chromium (${navigator.userAgent.match(/Chrome\/[\d.]+/)?.[0] ?? navigator.userAgent})`, () => {
  it.each(CASES)('$name', async ({ run }) => run((await import(/* @vite-ignore */ bundle)) as Enorm));
});
