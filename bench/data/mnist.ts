/**
 * MNIST from the `mnist` registry package (10,000 labelled 28x28 digits, pixels in [0, 1]),
 * for the default model, the examples and the experiments. Nothing is downloaded.
 */
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';

interface MnistDigit {
  length: number;
  get(index: number): number[];
}
type Mnist = Record<number, MnistDigit>;

export interface Digits {
  /** count x 784 pixels, example-major. */
  pixels: Float32Array;
  labels: Int32Array;
  count: number;
}

/** A seeded Fisher-Yates permutation of 0..n-1. */
export function shuffled(n: number, rand: () => number): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

/** All 10,000 digits, grouped by label (0s first) as the package stores them. */
export function loadDigits(): Digits {
  const mnist = createRequire(import.meta.url)('mnist') as Mnist;
  const samples: { pixels: number[]; label: number }[] = [];
  for (let digit = 0; digit < 10; digit++) {
    for (let i = 0; i < mnist[digit].length; i++) samples.push({ pixels: mnist[digit].get(i), label: digit });
  }
  const pixels = new Float32Array(samples.length * 784);
  const labels = new Int32Array(samples.length);
  samples.forEach((s, k) => {
    pixels.set(s.pixels, k * 784);
    labels[k] = s.label;
  });
  return { pixels, labels, count: samples.length };
}

/** The given rows as tensors: x [rows, 784] and one-hot y [rows, 10]. The caller disposes them. */
export function batchOf(data: Pick<Digits, 'pixels' | 'labels'>, rows: number[]): { x: tf.Tensor2D; y: tf.Tensor2D } {
  const x = new Float32Array(rows.length * 784);
  rows.forEach((r, k) => x.set(data.pixels.subarray(r * 784, (r + 1) * 784), k * 784));
  const labels = tf.tensor1d(Int32Array.from(rows, (r) => data.labels[r]), 'int32');
  const y = tf.oneHot(labels, 10).toFloat() as tf.Tensor2D;
  labels.dispose();
  return { x: tf.tensor2d(x, [rows.length, 784]), y };
}
