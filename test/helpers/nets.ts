import { compilePlan } from '../../src/plan/compile.js';
import type { Layer, Network } from '../../src/network/layers.js';
import { forward } from '../../src/network/forward.js';
import { mulberry32, normalArray } from '../../src/network/random.js';
import { forEachElement } from '../../src/reference/reference.js';

import { cloneNetwork } from './arrays.js';

export { allArrays, cloneNetwork, maxRelDiff, snapshot } from './arrays.js';

/**
 * Applies a random function-preserving rescaling (log-uniform d in [1/spread, spread] per unit)
 * through the compiled plan, in place. Tests check independently (with `forward`) that the
 * function is unchanged, which also checks the plan.
 */
export function randomRescale(net: Network, seed: number, spread = 4, residual: 'complete' | 'blocks' = 'complete'): void {
  const rng = mulberry32(seed);
  const plan = compilePlan(net, { includeBiases: false, residual });
  for (const g of plan.groups) {
    const d = Array.from({ length: g.size }, () => Math.exp((2 * rng() - 1) * Math.log(spread)));
    for (const w of g.writers) forEachElement(w, (x, u) => { plan.tensors[w.tensor].data[x] *= d[u]; });
    for (const r of g.readers) forEachElement(r, (x, u) => { plan.tensors[r.tensor].data[x] /= d[u]; });
  }
}

/**
 * A copy of the network whose plan tensors are replaced by float64 arrays (e.g. the reference's
 * balanced tensors), so that `forward` evaluates the exact float64 result.
 */
export function withFloat64Tensors(net: Network, tensors: Float64Array[], residual: 'complete' | 'blocks' = 'complete'): Network {
  const copy = cloneNetwork(net);
  const plan = compilePlan(copy, { includeBiases: false, residual });
  const replace = new Map(plan.tensors.map((t, i) => [t.data, tensors[i]]));
  return copy.map((l) => Object.fromEntries(Object.entries(l).map(([k, v]) => [k, replace.get(v as Float32Array) ?? v])) as Layer);
}

/** Random example-major inputs for a network input of per-example shape `shape`. */
export function randomInputs(shape: number[], batch: number, seed: number): Float32Array {
  return normalArray(batch * shape.reduce((a, b) => a * b, 1), 1, mulberry32(seed));
}

/** The network's first output on `input`. */
export function run(net: Network, input: Float32Array, batch: number, shape: number[]): Float64Array {
  return forward(net, [input], { batch, inputShapes: [shape] })[0];
}
