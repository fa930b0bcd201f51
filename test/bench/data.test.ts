import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { FASHION_CLASSES, loadFashion } from '../../bench/data/fashion-mnist.js';
import { batchOf, PIXELS, seededSplit, type ImageSet } from '../../bench/data/images.js';
import { loadDigits } from '../../bench/data/mnist.js';
import { mulberry32 } from '../../src/network/random.js';

function histogram(set: ImageSet): number[] {
  const h = new Array(10).fill(0);
  for (const l of set.labels) h[l]++;
  return h;
}

function checkPixels(set: ImageSet): void {
  expect(set.pixels.length).toBe(set.count * PIXELS);
  let max = 0;
  for (const p of set.pixels) {
    if (!(p >= 0 && p <= 1)) throw new Error(`pixel ${p} outside [0, 1]`);
    max = Math.max(max, p);
  }
  expect(max).toBe(1); // scaled, not left in 0..255 nor squashed
}

describe('image sets from the registry packages', () => {
  let fashion: ImageSet;
  beforeAll(() => {
    fashion = loadFashion();
  }, 60_000);

  it("fashion-mnist: 70,000 images (the package's two empty rows dropped), 7,000 per class, pixels in [0, 1]", () => {
    expect(fashion.count).toBe(70_000);
    expect(FASHION_CLASSES).toHaveLength(10);
    expect(histogram(fashion)).toEqual(new Array(10).fill(7000));
    checkPixels(fashion);
  });

  it('mnist: 10,000 digits, every class present, pixels in [0, 1]', () => {
    const digits = loadDigits();
    expect(digits.count).toBe(10_000);
    for (const n of histogram(digits)) expect(n).toBeGreaterThan(800);
    checkPixels(digits);
  });

  it('the seeded 60,000/10,000 split with a validation hold-out is disjoint, complete and reproducible', () => {
    const split = seededSplit(fashion.count, mulberry32(2019), { test: 10_000, validation: 5_000 });
    expect([split.train.length, split.validation.length, split.test.length]).toEqual([55_000, 5_000, 10_000]);
    const all = new Set([...split.train, ...split.validation, ...split.test]);
    expect(all.size).toBe(70_000);
    expect(seededSplit(fashion.count, mulberry32(2019), { test: 10_000, validation: 5_000 })).toEqual(split);
    expect(seededSplit(fashion.count, mulberry32(7), { test: 10_000, validation: 5_000 }).test).not.toEqual(split.test);
    // A random split keeps every class in the test set at about a tenth.
    for (const n of histogram({ ...fashion, labels: Int32Array.from(split.test, (r) => fashion.labels[r]) })) expect(Math.abs(n - 1000)).toBeLessThan(150);
    expect(() => seededSplit(100, mulberry32(1), { test: 80, validation: 30 })).toThrow(RangeError);
  });

  it('batches: flat or image layout, one-hot labels matching the rows', async () => {
    const rows = [5, 69_999, 0];
    for (const layout of ['flat', 'image'] as const) {
      const { x, y } = batchOf(fashion, rows, layout);
      expect(x.shape).toEqual(layout === 'flat' ? [3, 784] : [3, 28, 28, 1]);
      const xs = await x.data();
      rows.forEach((r, k) => expect(Array.from(xs.subarray(k * 784, (k + 1) * 784))).toEqual(Array.from(fashion.pixels.subarray(r * 784, (r + 1) * 784))));
      const labels = await tf.argMax(y, 1).data();
      expect(Array.from(labels)).toEqual(rows.map((r) => fashion.labels[r]));
      expect(await tf.sum(y).data()).toEqual(Float32Array.of(3));
      tf.dispose([x, y]);
    }
  });
});
