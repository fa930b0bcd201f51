/** The runtime suite in Bun on dist/index.js: `bun test ./test/runtimes/bun.ts` (after `npm run build`). */
// @ts-expect-error bun:test has no types in this project (Bun is a test-only binary from the `bun` package)
import { test } from 'bun:test';
import { onnxCase, type EnormOnnx } from './onnx-case.ts';
import { CASES, type Enorm } from './suite.ts';

declare const Bun: { version: string };

const enorm = (await import(new URL('../../dist/index.js', import.meta.url).href)) as Enorm;
for (const { name, run } of CASES) test(`Bun ${Bun.version}: ${name}`, () => run(enorm));

const onnx = (await import(new URL('../../dist/onnx.js', import.meta.url).href)) as EnormOnnx;
const bytes = new Uint8Array(await (await fetch(new URL('./fixtures/torch-conv.onnx', import.meta.url))).arrayBuffer());
test(`Bun ${Bun.version}: enorm/onnx reads, balances and writes an ONNX model`, () => onnxCase(enorm, onnx, bytes));
