/** Runs ONNX models in onnxruntime-web for the tests, and compares outputs and bytes. */
import { expect } from 'vitest';
import type { OnnxModel } from '../../src/model-io/onnx/index.js';
import { onnxRunner } from '../../src/model-io/onnx/runtime.js';
import { mulberry32 } from '../../src/network/random.js';

const BATCH = 4;

export async function run(bytes: Uint8Array, shape: number[], seed = 7, external?: Map<string, Uint8Array>): Promise<Float32Array> {
  const runner = await onnxRunner(bytes, external);
  if ('unavailable' in runner) throw new Error(runner.unavailable);
  const rnd = mulberry32(seed);
  const input = Float32Array.from({ length: BATCH * shape.reduce((a, b) => a * b, 1) }, () => rnd() * 2 - 1);
  return runner(input, BATCH, shape);
}

export function relativeDeviation(a: Float32Array, b: Float32Array): number {
  let max = 0;
  let dev = 0;
  for (let i = 0; i < a.length; i++) { max = Math.max(max, Math.abs(a[i])); dev = Math.max(dev, Math.abs(a[i] - b[i])); }
  return dev / max;
}

/** The byte ranges of the model file that the writer may change: the rescaled tensors' payloads. */
export function patchedRanges(model: OnnxModel): [number, number][] {
  return model.weights.filter((w) => w.payload.file === undefined)
    .flatMap((w) => w.payload.runs.map((r): [number, number] => [r.start, r.start + r.count * w.payload.width]));
}

export function bytesOutside(a: Uint8Array, b: Uint8Array, ranges: [number, number][]): number {
  expect(b.length).toBe(a.length);
  let differ = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i] && !ranges.some(([s, e]) => i >= s && i < e)) differ++;
  return differ;
}

