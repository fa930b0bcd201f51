/**
 * Labelled 28x28 greyscale image sets (MNIST, Fashion-MNIST) held in memory, seeded splits and
 * batches as tfjs tensors. Nothing is downloaded: the images come from registry packages.
 */
import * as tf from '@tensorflow/tfjs';

export const SIDE = 28;
export const PIXELS = SIDE * SIDE;

export interface ImageSet {
  /** count x 784 pixels in [0, 1], example-major. */
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

export interface Split {
  train: number[];
  validation: number[];
  test: number[];
}

/** Disjoint rows from one seeded permutation: the first `test` rows, the next `validation`, the rest train. */
export function seededSplit(count: number, rand: () => number, sizes: { test: number; validation: number }): Split {
  if (sizes.test + sizes.validation > count) throw new RangeError(`a split of ${sizes.test} test + ${sizes.validation} validation rows needs more than ${count} rows`);
  const order = shuffled(count, rand);
  return {
    test: order.slice(0, sizes.test),
    validation: order.slice(sizes.test, sizes.test + sizes.validation),
    train: order.slice(sizes.test + sizes.validation),
  };
}

/**
 * The given rows as tensors: x [rows, 784] ('flat') or [rows, 28, 28, 1] ('image'), and one-hot
 * y [rows, 10]. The caller disposes them.
 */
export function batchOf(data: Pick<ImageSet, 'pixels' | 'labels'>, rows: number[], layout: 'flat' | 'image' = 'flat'): { x: tf.Tensor; y: tf.Tensor2D } {
  const x = new Float32Array(rows.length * PIXELS);
  rows.forEach((r, k) => x.set(data.pixels.subarray(r * PIXELS, (r + 1) * PIXELS), k * PIXELS));
  const labels = tf.tensor1d(Int32Array.from(rows, (r) => data.labels[r]), 'int32');
  const y = tf.oneHot(labels, 10).toFloat() as tf.Tensor2D;
  labels.dispose();
  const shape = layout === 'flat' ? [rows.length, PIXELS] : [rows.length, SIDE, SIDE, 1];
  return { x: tf.tensor(x, shape), y };
}

/** Builds an ImageSet from per-class lists of 784 pixel values scaled by 1 / `max`. */
export function fromClasses(classes: ArrayLike<number>[][], max: number): ImageSet {
  const count = classes.reduce((a, c) => a + c.length, 0);
  const pixels = new Float32Array(count * PIXELS);
  const labels = new Int32Array(count);
  let k = 0;
  classes.forEach((images, label) => {
    for (const image of images) {
      if (image.length !== PIXELS) throw new RangeError(`class ${label} image ${k} has ${image.length} pixels, not ${PIXELS}`);
      for (let i = 0; i < PIXELS; i++) pixels[k * PIXELS + i] = image[i] / max;
      labels[k++] = label;
    }
  });
  return { pixels, labels, count };
}
