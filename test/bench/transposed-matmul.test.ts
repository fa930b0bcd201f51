import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { restoreTransposedMatMul, useFastTransposedMatMul } from '../../bench/experiments/transposed-matmul.js';
import { mulberry32 } from '../../src/network/random.js';

interface Case { a: number[]; b: number[]; transposeA: boolean; transposeB: boolean }

// Rank 2 and 3, a broadcast batch, every combination of the flags, odd sizes (XNNPACK's edge tiles).
const SHAPES: [number[], number[], number[], number[]][] = [
  // a plain, b plain, a transposed, b transposed (the shapes as stored)
  [[7, 5], [5, 9], [5, 7], [9, 5]],
  [[3, 6, 4], [3, 4, 5], [3, 4, 6], [3, 5, 4]],
  [[2, 17, 33], [33, 10], [2, 33, 17], [10, 33]],
  [[1, 64, 48], [1, 48, 40], [1, 48, 64], [1, 40, 48]],
];
const CASES: Case[] = SHAPES.flatMap(([a, b, at, bt]) => [
  { a, b, transposeA: false, transposeB: false },
  { a: at, b, transposeA: true, transposeB: false },
  { a, b: bt, transposeA: false, transposeB: true },
  { a: at, b: bt, transposeA: true, transposeB: true },
]);

const numbers = (n: number, rand: () => number) => Float32Array.from({ length: n }, () => rand() * 2 - 1);
const size = (s: number[]) => s.reduce((x, y) => x * y, 1);

/** The product in float64 from the stored values, and per element the bound K * 2^-22 * sum |a||b|. */
function exact(c: Case, a: Float32Array, b: Float32Array): { value: Float64Array; bound: Float64Array } {
  const [ra, rb] = [c.a.length, c.b.length];
  const m = c.transposeA ? c.a[ra - 1] : c.a[ra - 2];
  const k = c.transposeA ? c.a[ra - 2] : c.a[ra - 1];
  const n = c.transposeB ? c.b[rb - 2] : c.b[rb - 1];
  const batches = Math.max(ra === 3 ? c.a[0] : 1, rb === 3 ? c.b[0] : 1);
  const at = (bt: number, i: number, j: number) => (ra === 3 && c.a[0] > 1 ? bt * m * k : 0) + (c.transposeA ? j * m + i : i * k + j);
  const bAt = (bt: number, i: number, j: number) => (rb === 3 && c.b[0] > 1 ? bt * k * n : 0) + (c.transposeB ? j * k + i : i * n + j);
  const value = new Float64Array(batches * m * n);
  const bound = new Float64Array(batches * m * n);
  for (let bt = 0; bt < batches; bt++)
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let s = 0;
        let abs = 0;
        for (let q = 0; q < k; q++) {
          const x = a[at(bt, i, q)] * b[bAt(bt, q, j)];
          s += x;
          abs += Math.abs(x);
        }
        value[(bt * m + i) * n + j] = s;
        bound[(bt * m + i) * n + j] = k * 2 ** -22 * abs;
      }
  return { value, bound };
}

function product(c: Case, a: Float32Array, b: Float32Array): { data: Float32Array; shape: number[] } {
  return tf.tidy(() => {
    const r = tf.matMul(tf.tensor(a, c.a), tf.tensor(b, c.b), c.transposeA, c.transposeB);
    return { data: r.dataSync() as Float32Array, shape: r.shape };
  });
}

describe('BatchMatMul with transposed operands for tfjs-backend-wasm', () => {
  beforeAll(async () => {
    await tf.setBackend('wasm');
    await tf.ready();
  });
  afterAll(() => restoreTransposedMatMul());

  it.each(CASES)('matches float64 within K * 2^-22 * sum |a||b|, as tfjs’s own kernel does, with its shape: %o', (c) => {
    const rand = mulberry32(size(c.a) * 31 + size(c.b) + (c.transposeA ? 7 : 0) + (c.transposeB ? 13 : 0));
    const a = numbers(size(c.a), rand);
    const b = numbers(size(c.b), rand);
    restoreTransposedMatMul();
    const theirs = product(c, a, b);
    useFastTransposedMatMul();
    const ours = product(c, a, b);
    expect(ours.shape).toEqual(theirs.shape);
    const { value, bound } = exact(c, a, b);
    expect(ours.data.length).toBe(value.length);
    for (let i = 0; i < value.length; i++) {
      expect(Math.abs(ours.data[i] - value[i]), `ours [${i}]`).toBeLessThanOrEqual(bound[i]);
      expect(Math.abs(theirs.data[i] - value[i]), `tfjs [${i}]`).toBeLessThanOrEqual(bound[i]);
    }
  });

  it('the gradients of a dense layer (dX = dY W^T, dW = X^T dY) match tfjs’s kernel; no tensor or buffer is left behind', () => {
    const rand = mulberry32(5);
    const x = tf.tensor(numbers(32 * 40, rand), [32, 40]);
    const w = tf.tensor(numbers(40 * 24, rand), [40, 24]);
    const dy = tf.tensor(numbers(32 * 24, rand), [32, 24]);
    const grads = () => tf.tidy(() => {
      const g = tf.grads((p: tf.Tensor, q: tf.Tensor) => tf.sum(tf.mul(tf.relu(tf.matMul(p, q)), dy)))([x, w]);
      return g.map((t) => t.dataSync() as Float32Array);
    });
    restoreTransposedMatMul();
    const theirs = grads();
    useFastTransposedMatMul();
    const backend = tf.engine().backend as unknown as { numDataIds(): number };
    const [tensors, ids] = [tf.memory().numTensors, backend.numDataIds()];
    const ours = grads();
    expect([tf.memory().numTensors, backend.numDataIds()]).toEqual([tensors, ids]);
    ours.forEach((g, i) => {
      const scale = Math.max(...theirs[i].map(Math.abs));
      g.forEach((v, k) => expect(Math.abs(v - theirs[i][k])).toBeLessThanOrEqual(1e-5 * scale));
    });
    tf.dispose([x, w, dy]);
  });

  it('is idempotent and restorable: the registered kernel is ours once, tfjs’s after restore', () => {
    useFastTransposedMatMul();
    const ours = tf.getKernel('BatchMatMul', 'wasm');
    useFastTransposedMatMul();
    expect(tf.getKernel('BatchMatMul', 'wasm')).toBe(ours);
    restoreTransposedMatMul();
    expect(tf.getKernel('BatchMatMul', 'wasm')?.kernelFunc).not.toBe(ours?.kernelFunc);
  });
});
