import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { restoreConvFilterGradient, useFastConvFilterGradient } from '../../bench/experiments/conv-filter-grad.js';
import { mulberry32 } from '../../src/network/random.js';

type Pad = 'same' | 'valid' | number;
interface Case { batch: number; height: number; width: number; inChannels: number; outChannels: number; kernel: [number, number]; strides: [number, number]; pad: Pad }

const CASES: Case[] = [
  { batch: 3, height: 14, width: 14, inChannels: 1, outChannels: 8, kernel: [3, 3], strides: [1, 1], pad: 'same' },
  { batch: 2, height: 14, width: 14, inChannels: 8, outChannels: 16, kernel: [3, 3], strides: [2, 2], pad: 'same' },
  { batch: 4, height: 7, width: 9, inChannels: 5, outChannels: 3, kernel: [3, 2], strides: [2, 1], pad: 'valid' },
  { batch: 1, height: 8, width: 8, inChannels: 3, outChannels: 4, kernel: [5, 5], strides: [1, 1], pad: 2 },
  { batch: 2, height: 4, width: 4, inChannels: 16, outChannels: 10, kernel: [1, 1], strides: [1, 1], pad: 'valid' },
  { batch: 2, height: 9, width: 6, inChannels: 2, outChannels: 3, kernel: [4, 3], strides: [3, 2], pad: 'same' },
];

function randomTensor(shape: [number, number, number, number], rand: () => number, zeros = 0): tf.Tensor4D {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Array.from({ length: n }, () => (rand() < zeros ? 0 : rand() * 2 - 1)), shape) as tf.Tensor4D;
}

/** dW from tfjs's conv2d gradient, with whichever Conv2DBackpropFilter kernel is registered. */
function filterGradient(c: Case, x: tf.Tensor4D, dy: tf.Tensor4D, filter: tf.Tensor4D): Float32Array {
  return tf.tidy(() => {
    const g = tf.grad((w: tf.Tensor) => tf.sum(tf.mul(tf.conv2d(x, w as tf.Tensor4D, c.strides, c.pad), dy)))(filter);
    return g.dataSync() as Float32Array;
  });
}

describe('fast Conv2DBackpropFilter for the cpu backend', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });
  afterAll(() => restoreConvFilterGradient());

  it.each(CASES)('matches tfjs’s own kernel: %o', (c) => {
    const rand = mulberry32(c.batch * 97 + c.inChannels * 13 + c.outChannels);
    const filter = randomTensor([...c.kernel, c.inChannels, c.outChannels], rand);
    const x = randomTensor([c.batch, c.height, c.width, c.inChannels], rand, 0.4);
    const outShape = tf.conv2d(x, filter, c.strides, c.pad).shape;
    const dy = randomTensor(outShape, rand);
    restoreConvFilterGradient();
    const reference = filterGradient(c, x, dy, filter);
    useFastConvFilterGradient();
    const fast = filterGradient(c, x, dy, filter);
    expect(tf.getKernel('Conv2DBackpropFilter', 'cpu')?.kernelFunc).not.toBe(undefined);
    expect(fast.length).toBe(reference.length);
    const scale = Math.max(...reference.map(Math.abs));
    expect(scale).toBeGreaterThan(0);
    for (let i = 0; i < fast.length; i++) expect(Math.abs(fast[i] - reference[i])).toBeLessThanOrEqual(1e-6 * scale);
    tf.dispose([filter, x, dy]);
  });

  it('is installed once and can be undone', () => {
    restoreConvFilterGradient();
    const tfjsOwn = tf.getKernel('Conv2DBackpropFilter', 'cpu')!.kernelFunc;
    useFastConvFilterGradient();
    const fast = tf.getKernel('Conv2DBackpropFilter', 'cpu')!.kernelFunc;
    expect(fast).not.toBe(tfjsOwn);
    useFastConvFilterGradient();
    expect(tf.getKernel('Conv2DBackpropFilter', 'cpu')!.kernelFunc).toBe(fast);
    restoreConvFilterGradient();
    expect(tf.getKernel('Conv2DBackpropFilter', 'cpu')!.kernelFunc).toBe(tfjsOwn);
  });
});
