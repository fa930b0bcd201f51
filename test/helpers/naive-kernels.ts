import { expect } from 'vitest';

/** Naive float64 versions of the kernels (engine/backend.ts), shared by the kernel tests of every backend. */

export interface ViewSpec {
  start: number;
  outer: number;
  outerStride: number;
  count: number;
  inner: number;
}

export function term(x: number, p: number): number {
  return p === 2 ? x * x : p === 1 ? Math.abs(x) : Math.pow(Math.abs(x), p);
}

export function naiveAccumulate(t: Float32Array, v: ViewSpec, acc: Float64Array, p: number): Float64Array {
  const out = acc.slice();
  for (let o = 0; o < v.outer; o++)
    for (let i = 0; i < v.count; i++)
      for (let j = 0; j < v.inner; j++) out[i] += term(t[v.start + o * v.outerStride + i * v.inner + j], p);
  return out;
}

export function naiveScale(t: Float32Array, v: ViewSpec, s: Float32Array): Float32Array {
  const out = t.slice();
  for (let o = 0; o < v.outer; o++)
    for (let i = 0; i < v.count; i++)
      for (let j = 0; j < v.inner; j++) {
        const k = v.start + o * v.outerStride + i * v.inner + j;
        out[k] = Math.fround(out[k] * s[i]);
      }
  return out;
}

/** accumulateScaled: acc[idx] += |f32(w * s[i])|^p over the view (max for p = Infinity); the tensor is not changed. */
export function naiveAccumulateScaled(
  t: Float32Array,
  v: ViewSpec,
  s: Float32Array,
  acc: Float64Array,
  p: number,
  mode: number,
  a: number,
  b: number,
): { acc: Float64Array; hits: Int32Array } {
  const out = acc.slice();
  const hits = new Int32Array(acc.length);
  for (let o = 0; o < v.outer; o++)
    for (let i = 0; i < v.count; i++)
      for (let j = 0; j < v.inner; j++) {
        const idx = Math.floor((mode === 0 ? o : mode === 1 ? j : i) / a) % b;
        const x = Math.fround(t[v.start + o * v.outerStride + i * v.inner + j] * s[i]);
        out[idx] = p === Infinity ? Math.max(out[idx], Math.abs(x)) : out[idx] + term(x, p);
        hits[idx]++;
      }
  return { acc: out, hits };
}

/** scaleBoth: w = f32(w * f32(s[i] * g[(o / a) % b])) over the view; `bad` is 1 when a stored value is not finite. */
export function naiveScaleBoth(t: Float32Array, v: ViewSpec, s: Float32Array, g: Float32Array, a: number, b: number): { t: Float32Array; bad: number } {
  const out = t.slice();
  let bad = 0;
  for (let o = 0; o < v.outer; o++) {
    const f = g[Math.floor(o / a) % b];
    for (let i = 0; i < v.count; i++)
      for (let j = 0; j < v.inner; j++) {
        const k = v.start + o * v.outerStride + i * v.inner + j;
        out[k] = Math.fround(out[k] * Math.fround(s[i] * f));
        if (!Number.isFinite(out[k])) bad = 1;
      }
  }
  return { t: out, bad };
}

/** solve (engine/backend.ts) in f64, for `count` units: sums = [Af | Bf | Ao | Bo], logSigma the log scales (updated in place). */
export function naiveSolve(
  sums: Float64Array,
  count: number,
  p: number,
  c: number,
  omega: number,
  logSigma: Float64Array,
): { logSigma: Float64Array; sigma: Float32Array; sigmaInv: Float32Array; d: Float32Array; dInv: Float32Array; energy: number } {
  const out = { logSigma: logSigma.slice(), sigma: new Float32Array(count), sigmaInv: new Float32Array(count), d: new Float32Array(count), dInv: new Float32Array(count), energy: 0 };
  const e = p === Infinity ? 0.5 : 1 / (2 * p);
  for (let i = 0; i < count; i++) {
    const A = sums[i] + sums[2 * count + i];
    const B = sums[count + i] + sums[3 * count + i];
    const u = logSigma[i];
    let t = u;
    if (A > 0 && B > 0) {
      const x = e * (Math.log(B) - Math.log(A)) - Math.log(c) / 2;
      if (Number.isFinite(x)) t = x;
    }
    const n = omega === 1 ? t : u + omega * (t - u);
    out.logSigma[i] = n;
    out.sigma[i] = Math.exp(n);
    out.sigmaInv[i] = Math.exp(-n);
    out.d[i] = Math.exp(n - u);
    out.dInv[i] = Math.exp(u - n);
    if (p !== Infinity) out.energy += Math.exp(p * n) * sums[i] + Math.exp(-p * n) * sums[count + i];
  }
  return out;
}

export function naiveEnergy(t: Float32Array, p: number): number {
  let s = 0;
  for (const x of t) s += term(x, p);
  return s;
}

export function expectRel(got: ArrayLike<number>, want: ArrayLike<number>, tol: number): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    if (!(err <= tol * Math.abs(want[i]))) {
      throw new Error(`index ${i}: got ${got[i]}, want ${want[i]} (rel err ${err / Math.abs(want[i])})`);
    }
  }
}

/** As expectRel, where a non-finite want (NaN, +-Inf, or a 0 the tolerance cannot widen) must be matched exactly (NaN by NaN). */
export function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: number): void {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    if (Object.is(got[i], want[i]) || (Number.isNaN(got[i]) && Number.isNaN(want[i]))) continue;
    const err = Math.abs(got[i] - want[i]);
    if (!(Number.isFinite(want[i]) && err <= tol * Math.abs(want[i]))) throw new Error(`index ${i}: got ${got[i]}, want ${want[i]} (rel err ${err / Math.abs(want[i])})`);
  }
}

/** The same f64 bits (NaN payloads included). */
export function expectBits64(got: Float64Array, want: Float64Array): void {
  const g = new BigUint64Array(got.buffer, got.byteOffset, got.length);
  const w = new BigUint64Array(want.buffer, want.byteOffset, want.length);
  expect(g.length).toBe(w.length);
  for (let i = 0; i < w.length; i++) {
    if (g[i] !== w[i]) throw new Error(`index ${i}: got ${got[i]}, want ${want[i]}`);
  }
}

export function expectBits(got: Float32Array, want: Float32Array): void {
  const g = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const w = new Uint32Array(want.buffer, want.byteOffset, want.length);
  expect(g.length).toBe(w.length);
  for (let i = 0; i < w.length; i++) {
    if (g[i] !== w[i]) throw new Error(`index ${i}: got ${got[i]}, want ${want[i]}`);
  }
}

export const SA_SIZES = [1, 2, 3, 4, 5, 7, 8, 9, 12, 17, 33];

/** Views for accumulateScaled and scaleBoth: outer, count and inner all drawn from SA_SIZES (inner 1 included). */
export function randomFusedView(rng: () => number): ViewSpec & { length: number } {
  const pick = <T>(a: T[]): T => a[Math.floor(rng() * a.length)];
  const outer = pick(SA_SIZES.slice(0, 8));
  const count = pick(SA_SIZES);
  const inner = pick(SA_SIZES);
  const outerStride = count * inner + (rng() < 0.5 ? 0 : 1 + Math.floor(rng() * 7));
  const start = Math.floor(rng() * 6);
  const length = start + (outer - 1) * outerStride + count * inner + Math.floor(rng() * 5);
  return { start, outer, outerStride, count, inner, length };
}

