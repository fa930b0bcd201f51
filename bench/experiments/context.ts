/** What every experiment gets: the protocol, the data and its split, where results go, the backends. */
import type { ImageSet, Split } from '../data/images.js';
import type { Protocol } from './protocol.js';

export interface Backends {
  /** The tfjs backend for fully connected nets: webgpu on a hardware GPU, else wasm. */
  fc: string;
  /** For conv nets: tfjs-backend-wasm 4.22 cannot train convolutions, so cpu stands in for wasm. */
  conv: string;
  /** Where conv nets are evaluated: wasm runs their forward pass (only the gradients are missing). */
  convEval: string;
  /** Every backend the overhead experiment times. */
  all: string[];
  /** The WebGPU adapter, when one is in use. */
  adapter?: string;
}

export interface Context {
  protocol: Protocol;
  data: ImageSet;
  split: Split;
  resultsDir: string;
  backends: Backends;
  /** Switches tfjs to a backend (and sets up WebGPU in Node when needed). */
  use(backend: string): Promise<void>;
}

/** A unit of work; cost is in training-step equivalents, for the progress bar's ETA. */
export interface Task {
  label: string;
  cost: number;
  done(): boolean;
  /** Whether the rows it needs are there (e.g. its lr search); absent: always. */
  ready?(): boolean;
  run(progress: (units: number) => void): Promise<void>;
}

export const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** The first rows of each part of the split that an experiment's protocol asks for. */
export function rowsFor(ctx: Context, sizes: { trainRows: number; validationRows: number; testRows: number }) {
  return {
    trainRows: ctx.split.train.slice(0, sizes.trainRows),
    validationRows: ctx.split.validation.slice(0, sizes.validationRows),
    testRows: ctx.split.test.slice(0, sizes.testRows),
  };
}
