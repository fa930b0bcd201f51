import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { restoreTile, tileInto, useFastTile } from '../../bench/experiments/fast-tile.js';
import { mulberry32 } from '../../src/network/random.js';

// Ranks 0 to 5, reps of 0 and 1, rows of one element, the BN gradient's shape ([1, 1, 1, C] to the batch).
const CASES: [number[], number[]][] = [
  [[], []], [[5], [3]], [[5], [1]], [[5], [0]], [[1], [7]], [[0], [4]],
  [[3, 4], [2, 3]], [[3, 1], [1, 9]], [[1, 6], [5, 1]], [[4, 3], [1, 1]],
  [[2, 3, 4], [3, 1, 2]], [[1, 1, 1, 500], [256, 1, 1, 1]], [[2, 1, 3, 1], [1, 4, 2, 3]], [[2, 2, 1, 2, 3], [2, 1, 3, 1, 2]],
];

/** The tiled values, index by index: out[i] = x[i_a mod d_a for every axis]. */
function naive(x: ArrayLike<number>, shape: number[], reps: number[]): number[] {
  const outShape = shape.map((d, a) => d * reps[a]);
  const size = outShape.reduce((p, d) => p * d, 1);
  const out: number[] = [];
  for (let i = 0; i < size; i++) {
    let rest = i;
    let src = 0;
    let stride = 1;
    for (let a = shape.length - 1; a >= 0; a--) {
      const idx = rest % outShape[a];
      rest = Math.floor(rest / outShape[a]);
      src += (idx % shape[a]) * stride;
      stride *= shape[a];
    }
    out.push(x[src]);
  }
  return out;
}

const sizeOf = (s: number[]) => s.reduce((p, d) => p * d, 1);

describe('tileInto', () => {
  it('puts every source value where the definition of Tile says', () => {
    for (const [shape, reps] of CASES) {
      const x = Float32Array.from({ length: sizeOf(shape) }, (_, i) => i + 0.5);
      const out = new Float32Array(sizeOf(shape.map((d, a) => d * reps[a])));
      tileInto(x, shape, reps, out);
      expect(Array.from(out), `${shape} x ${reps}`).toEqual(naive(x, shape, reps));
    }
  });

  it('moves the stored bits, NaN payloads included', () => {
    const bits = Uint32Array.from([0x7fc00001, 0xffc12345, 0x80000000, 0x00000001]);
    const out = new Float32Array(4 * 6);
    tileInto(new Float32Array(bits.buffer), [4, 1], [2, 3], out);
    expect(Array.from(new Uint32Array(out.buffer))).toEqual(naive(bits, [4, 1], [2, 3]));
  });
});

describe("the wasm Tile replacement against tfjs's kernel", () => {
  beforeAll(async () => {
    await tf.setBackend('wasm');
  });
  afterAll(() => restoreTile());

  it('gives the same bits for float32, int32 and bool, and the same BatchNormalization gradients', async () => {
    const rand = mulberry32(7);
    const inputs = CASES.flatMap(([shape, reps]) => [
      { x: tf.tensor(Float32Array.from({ length: sizeOf(shape) }, () => rand() * 2 - 1), shape, 'float32'), reps },
      { x: tf.tensor(Int32Array.from({ length: sizeOf(shape) }, () => Math.floor(rand() * 1e6)), shape, 'int32'), reps },
      { x: tf.tensor(Uint8Array.from({ length: sizeOf(shape) }, () => (rand() < 0.5 ? 1 : 0)), shape, 'bool'), reps },
    ]);
    // BN in training mode: its gradient tiles 1/sqrt(var + eps) to the batch (tfjs-core's FusedBatchNorm gradient).
    const x = tf.randomNormal([64, 37], 0, 2, 'float32', 3);
    const gamma = tf.randomUniform([37], 0.5, 1.5, 'float32', 4);
    const beta = tf.randomUniform([37], -0.5, 0.5, 'float32', 5);
    const loss = (a: tf.Tensor, g: tf.Tensor) => tf.sum(tf.square(tf.batchNorm(a, tf.mean(a, 0), tf.moments(a, 0).variance, beta, g, 1e-3)));
    const bnGrads = () => tf.grads(loss)([x, gamma]);
    const kernels = (await tf.profile(() => bnGrads())).kernels.map((k) => k.name);
    expect(kernels).toContain('Tile');
    const run = () => ({
      tiles: inputs.map(({ x: t, reps }) => {
        const y = tf.tile(t, reps);
        const v = { shape: y.shape, dtype: y.dtype, data: Array.from(y.dataSync()) };
        y.dispose();
        return v;
      }),
      bn: bnGrads().map((g) => Array.from(new Uint32Array(g.dataSync().slice().buffer))),
    });
    const theirs = run();
    const tfjsKernel = tf.getKernel('Tile', 'wasm')!.kernelFunc;
    useFastTile();
    expect(tf.getKernel('Tile', 'wasm')!.kernelFunc).not.toBe(tfjsKernel);
    const ours = run();
    expect(ours.tiles).toEqual(theirs.tiles);
    expect(ours.bn).toEqual(theirs.bn);
    restoreTile();
    expect(tf.getKernel('Tile', 'wasm')!.kernelFunc).toBe(tfjsKernel);
  });
});
