/** The elementwise barrier activations and softmax of the float64 forward evaluator. */
import type { BarrierActivation } from './layers.js';

/** A batch of activations: `data` holds examples of `shape` each (maps are [h, w, c]). */
export interface Tensor {
  data: Float64Array;
  shape: number[];
}

const SELU_ALPHA = 1.6732632423543772848170429916717;
const SELU_SCALE = 1.0507009873554804934193349852946;

const sigmoid = (v: number): number => (v >= 0 ? 1 / (1 + Math.exp(-v)) : Math.exp(v) / (1 + Math.exp(v)));

export const ELEMENTWISE: Record<Exclude<BarrierActivation, 'softmax'>, (v: number) => number> = {
  sigmoid,
  tanh: Math.tanh,
  /** Exact GELU, x * Phi(x) = x/2 * (1 + erf(x/sqrt 2)) (the erf form, as PyTorch and tfjs 'gelu'). */
  gelu: (v) => 0.5 * v * (1 + erf(v / Math.SQRT2)),
  elu: (v) => (v > 0 ? v : Math.expm1(v)),
  selu: (v) => SELU_SCALE * (v > 0 ? v : SELU_ALPHA * Math.expm1(v)),
  softplus: (v) => Math.max(v, 0) + Math.log1p(Math.exp(-Math.abs(v))),
  swish: (v) => v * sigmoid(v),
  relu6: (v) => Math.min(Math.max(v, 0), 6),
};

/** Softmax over the last axis: the features of a vector, the channels of a map. */
export function softmax(x: Tensor): Tensor {
  const n = x.shape[x.shape.length - 1];
  const out = new Float64Array(x.data.length);
  for (let r = 0; r < out.length; r += n) {
    let max = -Infinity;
    for (let i = 0; i < n; i++) max = Math.max(max, x.data[r + i]);
    let sum = 0;
    for (let i = 0; i < n; i++) sum += (out[r + i] = Math.exp(x.data[r + i] - max));
    for (let i = 0; i < n; i++) out[r + i] /= sum;
  }
  return { data: out, shape: x.shape };
}

/**
 * erf to double precision: the everywhere-convergent series
 * erf(z) = 2/sqrt(pi) * exp(-z^2) * sum_n 2^n z^(2n+1) / (1*3*...*(2n+1)),
 * whose terms are all positive (no cancellation); |erf(z)| rounds to 1 beyond |z| = 6.
 */
export function erf(z: number): number {
  if (Number.isNaN(z)) return NaN;
  const a = Math.abs(z);
  if (a >= 6) return Math.sign(z);
  let term = a;
  let sum = a;
  for (let n = 1; term > sum * 1e-17; n++) {
    term *= (2 * a * a) / (2 * n + 1);
    sum += term;
  }
  return Math.sign(z) * (2 / Math.sqrt(Math.PI)) * Math.exp(-a * a) * sum;
}
