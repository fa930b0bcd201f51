import type { TensorRole } from '../network/layers.js';

/** One tensor the engine reads or rescales, with the arrays that move inversely to it. */
export interface TensorSlot {
  id: number;
  layerIndex: number;
  layer: string;
  role: TensorRole;
  data: Float32Array;
  /** Counted in the energy E = sum |w|^p (weights and gamma always; biases and beta with includeBiases). */
  cost: boolean;
  /** Rescaled by 1/d wherever `data` is rescaled by d. */
  companions: Float32Array[];
}

/**
 * The units of one group inside a tensor, as a strided 3-D block:
 * unit (unitStart + i) owns the elements  o*outerStride + i*inner + j  (0 <= o < outer, 0 <= j < inner),
 * counted from element `start` of the tensor.
 */
export interface View {
  tensor: number;
  start: number;
  outer: number;
  outerStride: number;
  count: number;
  inner: number;
  unitStart: number;
}

export interface WriterView extends View {
  /** Whether |w|^p of this view counts in the unit's incoming cost (false for biases / beta unless includeBiases). */
  inCost: boolean;
}

/**
 * Units that share one scale d each: unit i of every writer view is multiplied by d[i] and
 * unit i of every reader view divided by it. A plain hidden layer is a group with one writer
 * (its kernel, plus bias) and one reader (the next kernel); a residual stream has many.
 */
export interface Group {
  id: number;
  name: string;
  size: number;
  writers: WriterView[];
  readers: View[];
  /** Names of the layers whose outputs share this group's scales. */
  layers: string[];
}

/** Why some units are left at scale 1. */
export interface Barrier {
  layer: string;
  reason: string;
}

export interface Plan {
  tensors: TensorSlot[];
  /** In Gauss-Seidel order (topological order of the network). */
  groups: Group[];
  barriers: Barrier[];
}
