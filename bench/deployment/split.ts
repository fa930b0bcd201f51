/**
 * The MNIST split of the deployment figures: the one scripts/train-default-model.ts trained
 * models/mnist-mlp with (seeded permutation of the `mnist` package's 10,000 digits; the first 8,000
 * train), so both models are scored on digits neither saw.
 */
import { shuffled } from '../data/mnist.js';
import { mulberry32 } from '../../src/network/random.js';

export const MNIST_SPLIT_SEED = 20190227;
export const TRAIN_ROWS = 8000;
export const TEST_DIGITS = 1000;

/** The first TEST_DIGITS rows after the training rows of the seeded permutation. */
export function heldOut(count: number): number[] {
  return shuffled(count, mulberry32(MNIST_SPLIT_SEED)).slice(TRAIN_ROWS, TRAIN_ROWS + TEST_DIGITS);
}
