// The p = Infinity (max-reduction) kernels of every backend against naive code. A max is exact, so
// every comparison here is bit for bit: against the naive result and between backends (but for
// solve's f64 log scales, which are logs: within 4e-15).
import { describe, expect, it } from 'vitest';
import type { BackendName, Kernels } from '../../src/engine/backend.js';
import { make, Mem, misalign, placeFused } from '../helpers/kernel-memory.js';
import { expectBits, randomFusedView, type ViewSpec } from '../helpers/naive-kernels.js';
import { mulberry32, randomFloat32 } from '../helpers/random.js';

const KINDS: BackendName[] = ['simd', 'scalar', 'js'];

/** Calls fn(o, i, j, flat index) for every element of the view. */
function eachElement(v: ViewSpec, fn: (o: number, i: number, j: number, k: number) => void): void {
  for (let o = 0; o < v.outer; o++)
    for (let i = 0; i < v.count; i++)
      for (let j = 0; j < v.inner; j++) fn(o, i, j, v.start + o * v.outerStride + i * v.inner + j);
}

/** acc[i] = max(acc[i], max_{o,j} |t(o,i,j)|). */
function naiveAccumulateMax(t: Float32Array, v: ViewSpec, acc: Float64Array): Float64Array {
  const out = acc.slice();
  eachElement(v, (_o, i, _j, k) => { out[i] = Math.max(out[i], Math.abs(t[k])); });
  return out;
}

/** acc[(key / a) % b] = max(.., |f32(w * s[i])|) with key = o, j or i (mode 0, 1, 2). */
function naiveAccumulateScaledMax(t: Float32Array, v: ViewSpec, s: Float32Array, acc: Float64Array, mode: number, a: number, b: number): Float64Array {
  const out = acc.slice();
  eachElement(v, (o, i, j, k) => {
    const idx = Math.floor((mode === 0 ? o : mode === 1 ? j : i) / a) % b;
    out[idx] = Math.max(out[idx], Math.abs(Math.fround(t[k] * s[i])));
  });
  return out;
}

/** Runs one random accumulateScaled case on a backend and returns what it left (tensor bits, accumulator bits). */
function accumulateScaledCase(mem: Mem, kind: BackendName, seed: number, mode: number, a: number, b: number) {
  const rng = mulberry32(seed);
  const v = randomFusedView(rng);
  const t = randomFloat32(v.length, rng, 3);
  const s = randomFloat32(v.count, rng, 2);
  // Accumulators start small (some terms win, some lose) between two guards.
  const acc0 = new Float64Array(b + 2).map(() => rng());
  acc0[0] = acc0[b + 1] = 1e9;
  const { tp, sp, ap } = placeFused(mem, kind, rng, t, s, acc0);
  mem.b.kernels.accumulateScaled(tp + 4 * v.start, v.outer, v.outerStride, v.count, v.inner, sp, ap + 8, Infinity, mode, a, b);
  return { v, t, s, acc0, got: { t: mem.f32(tp, v.length), acc: mem.f64(ap, b + 2) } };
}

describe.each(KINDS)('%s max kernels (p = Infinity)', (kind) => {
  it('accumulate takes the max |w| per unit, inner == 1 and > 1, and reads only', async () => {
    const mem = new Mem(await make(kind));
    const rng = mulberry32(7);
    for (let trial = 0; trial < 80; trial++) {
      const v = randomFusedView(rng);
      const t = randomFloat32(v.length, rng, 3);
      const acc0 = new Float64Array(v.count).map(() => 2 * rng());
      const tp = mem.base + 64 + misalign(kind, rng, 4);
      const ap = mem.base + 256 * 1024 + misalign(kind, rng, 8);
      mem.put(tp, t);
      mem.put(ap, acc0);
      mem.b.kernels.accumulate(tp + 4 * v.start, v.outer, v.outerStride, v.count, v.inner, ap, Infinity);
      expect(Array.from(mem.f64(ap, v.count)), JSON.stringify(v)).toEqual(Array.from(naiveAccumulateMax(t, v, acc0)));
      expectBits(mem.f32(tp, v.length), t);
    }
  });

  it('accumulateScaled takes the max of the scaled values without storing them, every mode, a and b', async () => {
    const mem = new Mem(await make(kind));
    let seed = 100;
    for (const mode of [0, 1, 2])
      for (const a of [1, 2, 3, 9])
        for (const b of [1, 3, 4, 5, 9, 12, 40])
          for (let trial = 0; trial < 3; trial++) {
            const { v, t, s, acc0, got } = accumulateScaledCase(mem, kind, seed++, mode, a, b);
            expectBits(got.t, t);
            expect(Array.from(got.acc), `mode ${mode} a ${a} b ${b}`).toEqual([1e9, ...naiveAccumulateScaledMax(t, v, s, acc0.subarray(1, b + 1), mode, a, b), 1e9]);
          }
  });

  it('energy is max |w| (0 for an empty run); solve steps to sqrt(B/A)/sqrt(c), dead units keep logSigma, energy 0', async () => {
    const mem = new Mem(await make(kind));
    const k: Kernels = mem.b.kernels;
    const rng = mulberry32(9);
    for (const n of [0, 1, 3, 4, 7, 8, 9, 16, 31, 100]) {
      const t = randomFloat32(n, rng, 5);
      mem.put(mem.base + 16, t);
      expect(k.energy(mem.base + 16, n, Infinity)).toBe(t.reduce((m, x) => Math.max(m, Math.abs(x)), 0));
    }
    // [Af | Bf | Ao | Bo] of 5 units; B / A = 1.2 * 4^k for the live units 0, 1, 4 (k = 1, -2, 3), so that
    // sigma = sqrt(B / A) / sqrt(1.2) = 2^k; units 2 (A = 0) and 3 (B = 0) are dead. The pending scales
    // are 2^j (u = j ln 2): every f32 output is a power of two, which f64 log / exp errors in the last
    // bit cannot move, so the comparisons are bit for bit on every backend.
    const sums = Float64Array.of(1, 3, 0, 2, 0.5, 4.8, 0.3, 9, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 38.4);
    const [ks, js] = [[1, -2, 0, 0, 3], [0, -1, 3, -2, 7]];
    const u = Float64Array.from(js, (j) => j * Math.LN2);
    mem.put(mem.base + 1024, sums);
    mem.put(mem.base + 2048, u);
    mem.put(mem.base + 4096, Float64Array.of(7));
    k.solve(mem.base + 1024, 5, Infinity, 1.2, 1, mem.base + 2048, mem.base + 2560, mem.base + 3072, mem.base + 3584, mem.base + 4000, mem.base + 4096);
    const live = (i: number) => i !== 2 && i !== 3;
    const sigma = ks.map((x, i) => 2 ** (live(i) ? x : js[i]));
    expect(Array.from(mem.f32(mem.base + 2560, 5))).toEqual(sigma);
    expect(Array.from(mem.f32(mem.base + 3072, 5))).toEqual(sigma.map((x) => 1 / x));
    expect(Array.from(mem.f32(mem.base + 3584, 5))).toEqual(sigma.map((x, i) => x / 2 ** js[i]));
    expect(Array.from(mem.f32(mem.base + 4000, 5))).toEqual(sigma.map((x, i) => 2 ** js[i] / x));
    // logSigma: t = (log B - log A) / 2 - log(1.2) / 2 = k ln 2 up to the f64 rounding of the logs; dead units keep u exactly.
    const logSigma = mem.f64(mem.base + 2048, 5);
    for (let i = 0; i < 5; i++) {
      if (live(i)) expect(Math.abs(logSigma[i] - ks[i] * Math.LN2), `unit ${i}`).toBeLessThanOrEqual(4e-15);
      else expect(logSigma[i], `unit ${i}`).toBe(u[i]);
    }
    expect(mem.f64(mem.base + 4096, 1)[0]).toBe(0);
  });
});

describe('max kernels agree across backends bit for bit', () => {
  it('simd, scalar and js leave the same tensors and maxima', async () => {
    const results = await Promise.all(KINDS.map(async (kind) => {
      const mem = new Mem(await make(kind));
      // Pointers aligned as for js, so every backend sees the same memory layout.
      return [0, 1, 2].map((mode) => accumulateScaledCase(mem, 'js', 500 + mode, mode, 1 + mode, 5 + mode).got);
    }));
    expect(results[1]).toEqual(results[0]);
    expect(results[2]).toEqual(results[0]);
  });
});
