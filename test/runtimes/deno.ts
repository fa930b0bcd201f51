/** The runtime suite in Deno on dist/index.js: `deno test --no-check test/runtimes/deno.ts` (after `npm run build`). */
import { onnxCase, type EnormOnnx } from './onnx-case.ts';
import { CASES, type Enorm } from './suite.ts';

declare const Deno: { test(name: string, fn: () => Promise<void>): void; version: { deno: string } };

const enorm = (await import(new URL('../../dist/index.js', import.meta.url).href)) as Enorm;
for (const { name, run } of CASES) Deno.test(`Deno ${Deno.version.deno}: ${name}`, () => run(enorm));

const onnx = (await import(new URL('../../dist/onnx.js', import.meta.url).href)) as EnormOnnx;
const bytes = new Uint8Array(await (await fetch(new URL('./fixtures/torch-conv.onnx', import.meta.url))).arrayBuffer());
Deno.test(`Deno ${Deno.version.deno}: enorm/onnx reads, balances and writes an ONNX model`, async () => onnxCase(enorm, onnx, bytes));
