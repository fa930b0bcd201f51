/** The runtime suite on the built package in Node, as `import` and as `require` resolve it. */
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { onnxCase, type EnormOnnx } from './onnx-case.ts';
import { CASES, type Enorm } from './suite.ts';

// `enorm` is this package (devDependency "enorm": "file:."), resolved through its exports map; a
// variable, so that the type checker does not need dist/ (npm run build writes it).
const PACKAGE = 'enorm';
const entries: [string, () => Promise<Enorm>][] = [
  ['import (dist/index.js)', () => import(/* @vite-ignore */ PACKAGE) as Promise<Enorm>],
  ['require (dist/cjs/index.js)', async () => createRequire(import.meta.url)(PACKAGE) as Enorm],
];

describe.each(entries)('Node, %s', (_, load) => {
  it.each(CASES)('$name', async ({ run }) => run(await load()));
});

describe('Node, ESM and CommonJS copies together', () => {
  it('an ENormError from one copy is recognised by the other', async () => {
    const [esm, cjs] = await Promise.all(entries.map(([, load]) => load()));
    expect(esm).not.toBe(cjs);
    const fromCjs = await cjs.balance(cjs.mlp({ sizes: [3, 4, 2] }), { c: -1 }).catch((e: unknown) => e);
    expect(esm.isENormError(fromCjs)).toBe(true);
    expect(fromCjs instanceof esm.ENormError).toBe(true);
    expect(esm.isENormError(new Error('E_OPTION'))).toBe(false);
    expect(esm.isENormError({ code: 'E_OPTION', name: 'ENormError' })).toBe(false);
  });
});

describe('Node, enorm/onnx', () => {
  const bytes = new Uint8Array(readFileSync(new URL('./fixtures/torch-conv.onnx', import.meta.url)));
  it('import: reads, balances and writes an ONNX model, changing only the rescaled bytes', async () => {
    await onnxCase(await import(/* @vite-ignore */ PACKAGE) as Enorm, await import(/* @vite-ignore */ `${PACKAGE}/onnx`) as EnormOnnx, bytes);
  });
  it('require: the same through the CommonJS build', async () => {
    const require = createRequire(import.meta.url);
    await onnxCase(require(PACKAGE) as Enorm, require(`${PACKAGE}/onnx`) as EnormOnnx, bytes);
  });
});
