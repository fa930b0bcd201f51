/**
 * MNIST from the `mnist` registry package: 10,000 labelled 28x28 digits, pixels in [0, 1].
 */
import { createRequire } from 'node:module';
import { fromClasses, type ImageSet } from './images.js';

export { batchOf, shuffled } from './images.js';
export type Digits = ImageSet;

interface MnistDigit {
  length: number;
  get(index: number): number[];
}

/** All 10,000 digits, grouped by label (0s first) as the package stores them. */
export function loadDigits(): ImageSet {
  const mnist = createRequire(import.meta.url)('mnist') as Record<number, MnistDigit>;
  return fromClasses(Array.from({ length: 10 }, (_, d) => Array.from({ length: mnist[d].length }, (_, i) => mnist[d].get(i))), 1);
}
