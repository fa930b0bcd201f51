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

/** acc[idx] += |w'|^p over the view, w' = naiveScale(...), idx = (o / a) % b (mode 0) or (j / a) % b (mode 1). */
export function naiveScaleAccumulate(
  t: Float32Array,
  v: ViewSpec,
  s: Float32Array,
  acc: Float64Array,
  p: number,
  mode: number,
  a: number,
  b: number,
): { t: Float32Array; acc: Float64Array; hits: Int32Array } {
  const w = naiveScale(t, v, s);
  const out = acc.slice();
  const hits = new Int32Array(acc.length);
  for (let o = 0; o < v.outer; o++)
    for (let i = 0; i < v.count; i++)
      for (let j = 0; j < v.inner; j++) {
        const idx = Math.floor((mode === 0 ? o : mode === 1 ? j : i) / a) % b;
        out[idx] += term(w[v.start + o * v.outerStride + i * v.inner + j], p);
        hits[idx]++;
      }
  return { t: w, acc: out, hits };
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

export function expectBits(got: Float32Array, want: Float32Array): void {
  const g = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const w = new Uint32Array(want.buffer, want.byteOffset, want.length);
  expect(g.length).toBe(w.length);
  for (let i = 0; i < w.length; i++) {
    if (g[i] !== w[i]) throw new Error(`index ${i}: got ${got[i]}, want ${want[i]}`);
  }
}

export const SA_SIZES = [1, 2, 3, 4, 5, 7, 8, 9, 12, 17, 33];

/** Views for scaleAccumulate: outer, count and inner all drawn from SA_SIZES (inner 1 included). */
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

