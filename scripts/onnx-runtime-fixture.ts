/**
 * Writes test/runtimes/fixtures/torch-conv.onnx, the ONNX model the runtime suite balances in every
 * runtime (a PyTorch-style conv net: Conv+BN+Relu, depthwise, residual Add, MaxPool, Flatten, Gemm),
 * built with the test builder: `npx tsx scripts/onnx-runtime-fixture.ts`.
 */
import { writeFileSync } from 'node:fs';
import { buildOnnx, torchConvNet } from '../test/helpers/onnx-builder.js';

const { bytes } = buildOnnx(torchConvNet());
writeFileSync(new URL('../test/runtimes/fixtures/torch-conv.onnx', import.meta.url), bytes);
console.log(`wrote test/runtimes/fixtures/torch-conv.onnx (${bytes.length} bytes)`);
