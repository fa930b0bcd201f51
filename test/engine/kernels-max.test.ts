// The p = Infinity (max-reduction) kernels of every backend against naive code. A max is exact, so
// every comparison here is bit for bit: against the naive result and between backends.
import { describe, expect, it } from 'vitest';
import type { BackendName, Kernels } from '../../src/engine/backend.js';
import { make, Mem, misalign, placeFused } from '../helpers/kernel-memory.js';
import { expectBits, naiveScale, randomFusedView, type ViewSpec } from '../helpers/naive-kernels.js';
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

/** The scaled tensor, and acc[(key / a) % b] = max(.., |new w|) with key = o, j or i (mode 0, 1, 2). */
function naiveScaleAccumulateMax(t: Float32Array, v: ViewSpec, s: Float32Array, acc: Float64Array, mode: number, a: number, b: number) {
  const w = naiveScale(t, v, s);
  const out = acc.slice();
  eachElement(v, (o, i, j, k) => {
    const idx = Math.floor((mode === 0 ? o : mode === 1 ? j : i) / a) % b;
    out[idx] = Math.max(out[idx], Math.abs(w[k]));
  });
  return { t: w, acc: out };
}

/** Runs one random case on a backend and returns what it wrote (tensor bits, accumulator bits). */
function scaleAccumulateCase(mem: Mem, kind: BackendName, seed: number, mode: number, a: number, b: number) {
  const rng = mulberry32(seed);
  const v = randomFusedView(rng);
  const t = randomFloat32(v.length, rng, 3);
  const s = randomFloat32(v.count, rng, 2);
  // Accumulators start small (some terms win, some lose) between two guards.
  const acc0 = new Float64Array(b + 2).map(() => rng());
  acc0[0] = acc0[b + 1] = 1e9;
  const { tp, sp, ap } = placeFused(mem, kind, rng, t, s, acc0);
  mem.b.kernels.scaleAccumulate(tp + 4 * v.start, v.outer, v.outerStride, v.count, v.inner, sp, ap + 8, Infinity, mode, a, b);
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

  it('scaleAccumulate scales as scale does and takes the max of the new values, every mode, a and b', async () => {
    const mem = new Mem(await make(kind));
    let seed = 100;
    for (const mode of [0, 1, 2])
      for (const a of [1, 2, 3, 9])
        for (const b of [1, 3, 4, 5, 9, 12, 40])
          for (let trial = 0; trial < 3; trial++) {
            const { v, t, s, acc0, got } = scaleAccumulateCase(mem, kind, seed++, mode, a, b);
            const want = naiveScaleAccumulateMax(t, v, s, acc0.subarray(1, b + 1), mode, a, b);
            expectBits(got.t, want.t);
            expect(Array.from(got.acc), `mode ${mode} a ${a} b ${b}`).toEqual([1e9, ...want.acc, 1e9]);
          }
  });

  it('energy is max |w| (0 for an empty run); solveScales is sqrt(b/a)/sqrt(c), dead units 1', async () => {
    const mem = new Mem(await make(kind));
    const k: Kernels = mem.b.kernels;
    const rng = mulberry32(9);
    for (const n of [0, 1, 3, 4, 7, 8, 9, 16, 31, 100]) {
      const t = randomFloat32(n, rng, 5);
      mem.put(mem.base + 16, t);
      expect(k.energy(mem.base + 16, n, Infinity)).toBe(t.reduce((m, x) => Math.max(m, Math.abs(x)), 0));
    }
    const a = Float64Array.of(4, 1, 0, 2, 9);
    const b = Float64Array.of(1, 1e-6, 3, 0, 9);
    mem.put(mem.base + 1024, a);
    mem.put(mem.base + 2048, b);
    k.solveScales(mem.base + 1024, mem.base + 2048, 5, Infinity, 1.2, mem.base + 3072, mem.base + 4096);
    const want = Array.from(a, (ai, i) => (ai > 0 && b[i] > 0 ? Math.sqrt(b[i] / ai) / Math.sqrt(1.2) : 1));
    expect(Array.from(mem.f32(mem.base + 3072, 5))).toEqual(want.map(Math.fround));
    expect(Array.from(mem.f32(mem.base + 4096, 5))).toEqual(want.map((x) => Math.fround(1 / x)));
  });
});

describe('max kernels agree across backends bit for bit', () => {
  it('simd, scalar and js write the same tensors and maxima', async () => {
    const results = await Promise.all(KINDS.map(async (kind) => {
      const mem = new Mem(await make(kind));
      // Pointers aligned as for js, so every backend sees the same memory layout.
      return [0, 1, 2].map((mode) => scaleAccumulateCase(mem, 'js', 500 + mode, mode, 1 + mode, 5 + mode).got);
    }));
    expect(results[1]).toEqual(results[0]);
    expect(results[2]).toEqual(results[0]);
  });
});
