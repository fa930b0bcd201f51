/**
 * Symmetric round-to-nearest weight quantisation and its signal-to-quantisation-noise ratio,
 * runtime-neutral (no Node, no tfjs): the math behind the CLI's --quantize report.
 *
 * With b bits the integer grid is -(2^(b-1) - 1) .. 2^(b-1) - 1 (symmetric: -2^(b-1) is unused), and
 *   scale = max|W| / (2^(b-1) - 1)          over the whole tensor, or over each output channel
 *   Q(w)  = scale * round(w / scale)         (round half away from zero, as the integer kernels do)
 *   SQNR  = 10 log10(sum W^2 / sum (W - Q(W))^2)  in dB.
 * A group whose max|W| is 0 has scale 0 and is kept exactly (Q(w) = 0).
 */
import { ENormError } from '../errors.js';

/** The quantisation bit widths the report offers. */
export const QUANT_BITS = [8, 4] as const;
export type QuantBits = (typeof QUANT_BITS)[number];

/** Largest integer level of b-bit symmetric quantisation: 2^(b-1) - 1 (127 for int8, 7 for int4). */
export function maxLevel(bits: number): number {
  if (!Number.isInteger(bits) || bits < 2 || bits > 32) throw new ENormError('E_OPTION', `quantisation bits must be a whole number in 2..32, got ${bits}`);
  return 2 ** (bits - 1) - 1;
}

/** Round half away from zero: Math.round rounds -2.5 to -2, which would make Q asymmetric. */
const roundHalfAway = (x: number) => Math.sign(x) * Math.round(Math.abs(x));

/**
 * Per-group scales: max|w| over the elements of each group / maxLevel. `groupOf(i)` is element i's
 * group (its output channel), `groups` their count; without them the whole tensor is one group.
 */
export function quantScales(w: ArrayLike<number>, bits: number, groups = 1, groupOf: (i: number) => number = () => 0): Float64Array {
  const level = maxLevel(bits);
  const max = new Float64Array(groups);
  for (let i = 0; i < w.length; i++) {
    const g = groupOf(i);
    const a = Math.abs(w[i]);
    if (a > max[g]) max[g] = a;
  }
  for (let g = 0; g < groups; g++) max[g] /= level;
  return max;
}

/** Q(W) in float64: each element rounded to its group's grid (a zero scale keeps 0). */
export function quantize(w: ArrayLike<number>, bits: number, groups = 1, groupOf: (i: number) => number = () => 0): Float64Array {
  const scales = quantScales(w, bits, groups, groupOf);
  const q = new Float64Array(w.length);
  for (let i = 0; i < w.length; i++) {
    const s = scales[groupOf(i)];
    q[i] = s > 0 ? s * roundHalfAway(w[i] / s) : 0;
  }
  return q;
}

/**
 * 10 log10(sum x^2 / sum (x - y)^2) in dB over paired values. Infinity when y equals x exactly
 * (including an all-zero x): no quantisation noise at all.
 */
export function sqnrDb(signal: ArrayLike<number>, approx: ArrayLike<number>): number {
  const acc = new SqnrAccumulator();
  acc.add(signal, approx);
  return acc.db;
}

/** A running sqnrDb over chunks of paired values (the output SQNR over the check's batches). */
export class SqnrAccumulator {
  private power = 0;
  private noise = 0;
  add(signal: ArrayLike<number>, approx: ArrayLike<number>): void {
    for (let i = 0; i < signal.length; i++) {
      this.power += signal[i] * signal[i];
      const e = signal[i] - approx[i];
      this.noise += e * e;
    }
  }
  get db(): number {
    return this.noise === 0 ? Infinity : 10 * Math.log10(this.power / this.noise);
  }
}

/** The SQNR of quantising `w` (see the module comment). */
export function weightSqnr(w: ArrayLike<number>, bits: number, groups = 1, groupOf: (i: number) => number = () => 0): number {
  return sqnrDb(w, quantize(w, bits, groups, groupOf));
}
