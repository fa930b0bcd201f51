// The deferred-scale kernels accumulateScaled and scaleBoth of every backend against
// the naive float64 references, and the backends against each other (solve: kernels-solve.test.ts).
// Needs `npm run build:wasm` first (the "pretest" script runs it).
import { describe, expect, it } from 'vitest';
import type { BackendName } from '../../src/engine/backend.js';
import { make, Mem, misalign, placeFused } from '../helpers/kernel-memory.js';
import { mulberry32, randomFloat32 } from '../helpers/random.js';
import {
  expectBits, expectBits64, expectClose, naiveAccumulateScaled, naiveScaleBoth, randomFusedView, term, type ViewSpec,
} from '../helpers/naive-kernels.js';

const KINDS: BackendName[] = ['simd', 'scalar', 'js'];
const POWERS = [0.5, 1, 2, 3, Infinity];
const MODES = [0, 1, 2];

/** Some elements set to subnormals, f32 min normal, zeros of either sign (all finite). */
function spice(t: Float32Array, rng: () => number): Float32Array {
  const special = [1e-45, -3e-45, 1e-40, -1.17549435e-38, 0, -0];
  for (let k = 0; k < t.length; k++) if (rng() < 0.1) t[k] = special[Math.floor(rng() * special.length)];
  return t;
}

/** The relative tolerance of a p-sum against float64 code; a max is exact. */
const tolOf = (p: number) => (p === Infinity ? 0 : 1e-12);

/** Places t, s, g at misaligned pointers; returns the pointers. */
function placeBoth(mem: Mem, kind: BackendName, rng: () => number, t: Float32Array, s: Float32Array, g: Float32Array) {
  const { tp, sp } = placeFused(mem, kind, rng, t, s, new Float64Array(0));
  const gp = mem.base + 768 * 1024 + misalign(kind, rng, 4);
  mem.put(gp, g);
  return { tp, sp, gp };
}

describe.each(KINDS)('%s backend: deferred-scale kernels', (kind) => {
  it('accumulateScaled = naiveAccumulateScaled for every mode, a, b and p; tensor, scales and guards untouched', async () => {
    const mem = new Mem(await make(kind));
    const k = mem.b.kernels;
    const rng = mulberry32(91);
    const guard = 12345.5;
    for (const mode of MODES)
      // a = 9 and b = 9, 12 also reach the 8-wide SIMD steps of the run and across-accumulator paths.
      for (const a of [1, 2, 3, 9])
        for (const b of [1, 3, 4, 5, 7, 9, 12, 40])
          for (const p of POWERS)
            for (let trial = 0; trial < 3; trial++) {
              const v = randomFusedView(rng);
              const t = spice(randomFloat32(v.length, rng, 3), rng);
              const s = randomFloat32(v.count, rng, 2);
              const acc0 = new Float64Array(b + 2).map(() => rng());
              acc0[0] = acc0[b + 1] = guard;
              const { tp, sp, ap } = placeFused(mem, kind, rng, t, s, acc0);
              k.accumulateScaled(tp + 4 * v.start, v.outer, v.outerStride, v.count, v.inner, sp, ap + 8, p, mode, a, b);
              const want = naiveAccumulateScaled(t, v, s, acc0.subarray(1, b + 1), p, mode, a, b);
              try {
                expectBits(mem.f32(tp, v.length), t);
                expectBits(mem.f32(sp, v.count), s);
                const acc = mem.f64(ap, b + 2);
                expect([acc[0], acc[b + 1]]).toEqual([guard, guard]);
                expectClose(acc.subarray(1, b + 1), want.acc, tolOf(p));
              } catch (e) {
                throw new Error(`mode ${mode} a ${a} b ${b} p ${p} view ${JSON.stringify(v)}: ${e instanceof Error ? e.message : String(e)}`);
              }
            }
  });

  it('accumulateScaled sums what scale would store: scale then accumulate on a dense [X, Y] copy', async () => {
    const mem = new Mem(await make(kind));
    const k = mem.b.kernels;
    const rng = mulberry32(92);
    const [tp, up, sp, ap, bp] = [16, 1024, 512, 768, 896].map((kb) => mem.base + kb * 1024);
    for (const [X, Y] of [[1, 1], [1, 5], [5, 1], [3, 7], [9, 4], [17, 33], [64, 40], [40, 64]])
      for (const p of POWERS)
        for (const rows of [true, false]) {
          const t = randomFloat32(X * Y, rng, 3);
          const [n, m] = rows ? [X, Y] : [Y, X]; // scaled units, accumulated units
          const s = randomFloat32(n, rng, 2);
          mem.put(tp, t);
          mem.put(up, t);
          mem.put(sp, s);
          mem.put(ap, new Float64Array(m));
          mem.put(bp, new Float64Array(m));
          if (rows) {
            // Rows x scaled (outer 1, count X, inner Y); column y is j: mode inner, a 1, b Y.
            k.accumulateScaled(tp, 1, X * Y, X, Y, sp, ap, p, 1, 1, Y);
            k.scale(up, 1, X * Y, X, Y, sp);
            k.accumulate(up, X, Y, Y, 1, bp, p);
          } else {
            // Columns y scaled (outer X, stride Y, count Y, inner 1); row x is o: mode outer, a 1, b X.
            k.accumulateScaled(tp, X, Y, Y, 1, sp, ap, p, 0, 1, X);
            k.scale(up, X, Y, Y, 1, sp);
            k.accumulate(up, 1, X * Y, X, Y, bp, p);
          }
          expectBits(mem.f32(tp, X * Y), t);
          const w = mem.f32(up, X * Y);
          const want = new Float64Array(m);
          for (let x = 0; x < X; x++)
            for (let y = 0; y < Y; y++) {
              const u = rows ? y : x;
              want[u] = p === Infinity ? Math.max(want[u], Math.abs(w[x * Y + y])) : want[u] + term(w[x * Y + y], p);
            }
          expectClose(mem.f64(ap, m), mem.f64(bp, m), tolOf(p) * 10);
          expectClose(mem.f64(ap, m), want, tolOf(p));
        }
  });

  it('accumulateScaled stays finite for |w| = 1e-30 and 1e30; NaN and Inf reach only the accumulators they feed', async () => {
    const mem = new Mem(await make(kind));
    const rng = mulberry32(93);
    for (const bad of [1e-30, 1e30, NaN, Infinity, -Infinity])
      for (const p of POWERS)
        for (const [mode, a, b] of [[0, 1, 3], [0, 2, 4], [1, 1, 4], [1, 1, 5], [1, 2, 3], [1, 3, 1], [2, 1, 64], [2, 2, 3]]) {
          const v = randomFusedView(rng);
          const t = randomFloat32(v.length, rng).map((x) => Math.sign(x || 1) * (0.5 + Math.abs(x)));
          if (Number.isFinite(bad)) t.forEach((x, i) => (t[i] = x * bad));
          else t[v.start + Math.floor(rng() * (v.count * v.inner))] = bad;
          const s = randomFloat32(v.count, rng).map((x) => Math.sign(x || 1) * (0.5 + Math.abs(x)));
          const { tp, sp, ap } = placeFused(mem, kind, rng, t, s, new Float64Array(b));
          mem.b.kernels.accumulateScaled(tp + 4 * v.start, v.outer, v.outerStride, v.count, v.inner, sp, ap, p, mode, a, b);
          const got = mem.f64(ap, b);
          const want = naiveAccumulateScaled(t, v, s, new Float64Array(b), p, mode, a, b);
          if (Number.isFinite(bad)) for (let y = 0; y < b; y++) expect(want.hits[y] === 0 ? got[y] === 0 : Number.isFinite(got[y]) && got[y] > 0).toBe(true);
          expectClose(got, want.acc, tolOf(p));
        }
  });

  it('accumulateScaled and scaleBoth do nothing for empty views', async () => {
    const mem = new Mem(await make(kind));
    const k = mem.b.kernels;
    const t = randomFloat32(64, mulberry32(94));
    mem.put(mem.base, t);
    mem.put(mem.base + 1024, new Float64Array([1, 2, 3, 4]));
    mem.put(mem.base + 2048, new Float32Array([2, 2, 2, 2]));
    for (const [outer, count, inner] of [[0, 4, 1], [2, 0, 1], [0, 4, 3], [2, 0, 3], [2, 4, 0]]) {
      for (const mode of MODES) k.accumulateScaled(mem.base, outer, 16, count, inner, mem.base + 2048, mem.base + 1024, 2, mode, 1, 4);
      expect(k.scaleBoth(mem.base, outer, 16, count, inner, mem.base + 2048, mem.base + 2048, 1, 4)).toBe(0);
    }
    expectBits(mem.f32(mem.base, 64), t);
    expect(Array.from(mem.f64(mem.base + 1024, 4))).toEqual([1, 2, 3, 4]);
  });

  it('scaleBoth = naiveScaleBoth bit for bit (flag 0), nothing outside the view, s and g untouched', async () => {
    const mem = new Mem(await make(kind));
    const rng = mulberry32(95);
    for (const a of [1, 2, 3])
      for (const b of [1, 2, 5])
        for (let trial = 0; trial < 40; trial++) {
          const v = randomFusedView(rng);
          const t = spice(randomFloat32(v.length, rng, 5), rng);
          const s = spice(randomFloat32(v.count, rng, 4), rng);
          const g = randomFloat32(b, rng, 3);
          const { tp, sp, gp } = placeBoth(mem, kind, rng, t, s, g);
          const bad = mem.b.kernels.scaleBoth(tp + 4 * v.start, v.outer, v.outerStride, v.count, v.inner, sp, gp, a, b);
          const want = naiveScaleBoth(t, v, s, g, a, b);
          expectBits(mem.f32(tp, v.length), want.t);
          expect([bad, want.bad]).toEqual([0, 0]);
          expectBits(mem.f32(sp, v.count), s);
          expectBits(mem.f32(gp, b), g);
        }
  });

  it('scaleBoth flags 1 when an input or a product is not finite, and still stores every product', async () => {
    const mem = new Mem(await make(kind));
    const rng = mulberry32(96);
    for (let trial = 0; trial < 150; trial++) {
      const v = randomFusedView(rng);
      const t = randomFloat32(v.length, rng, 2);
      const s = randomFloat32(v.count, rng, 2);
      const g = randomFloat32(3, rng, 2);
      // One bad spot: a non-finite weight, scale or factor; or f32 overflow of s*g, or of s*g*w only.
      const at = v.start + Math.floor(rng() * v.outer) * v.outerStride + Math.floor(rng() * v.count * v.inner);
      const i = Math.floor(rng() * v.count);
      const bad = [NaN, Infinity, -Infinity][trial % 3];
      switch (trial % 6) {
        case 0: t[at] = bad; break;
        case 1: s[i] = bad; break;
        case 2: g[Math.floor(rng() * 3)] = bad; break;
        case 3: s.fill(1e30); g.fill(-1e10); break; // s*g overflows: every product is +-Inf (or NaN for w = 0)
        case 4: t[at] = 3e38; s.fill(2); g.fill(0.75); break; // s*g = 1.5 is finite, s*g*w > 3.4e38
        default: t[at] = -3.4028234663852886e38; s.fill(Math.fround(1 + 2 ** -23)); g.fill(1); // f32 max times 1 + 2^-23 rounds to -Inf
      }
      const { tp, sp, gp } = placeBoth(mem, kind, rng, t, s, g);
      const flag = mem.b.kernels.scaleBoth(tp + 4 * v.start, v.outer, v.outerStride, v.count, v.inner, sp, gp, 1, 3);
      const want = naiveScaleBoth(t, v, s, g, 1, 3);
      expect(flag, `case ${trial % 6} view ${JSON.stringify(v)}`).toBe(want.bad);
      expectBits(mem.f32(tp, v.length), want.t);
      // A bad scale or factor may sit outside the view's reach (g[2] with outer < 3): then the flag is 0.
      if (trial % 6 !== 1 && trial % 6 !== 2) expect(flag).toBe(1);
    }
  });

  it('scaleBoth flags an f32 overflow exactly at the rounding edge: 2^128 - 2^103 and above round to Inf', async () => {
    const mem = new Mem(await make(kind));
    // Exact products w * s[i] * g of f32 factors: (2^25 - 1.5) 2^103 rounds down to the f32 max;
    // the midpoint (2^25 - 1) 2^103 (a tie, to the even 2^128) and (2^25 - 0.5) 2^103 round to Inf.
    const cases: [number, number, number][] = [[12913 * 2 ** 51, 5197 * 2 ** 51, 0], [18631 * 2 ** 51, 1801 * 2 ** 52, 1], [8193 * 2 ** 51, 8191 * 2 ** 51, 1]];
    for (const [x, f, flag] of cases)
      for (const [count, inner] of [[9, 1], [1, 9], [2, 9], [13, 1]])
        for (const sign of [1, -1]) {
          const v: ViewSpec = { start: 0, outer: 2, outerStride: count * inner, count, inner };
          const t = new Float32Array(2 * count * inner).fill(0.5);
          const at = count * inner + Math.floor((count * inner) / 2); // a lane past the first SIMD block where there is one
          t[at] = sign * x;
          const s = new Float32Array(count).fill(f / 2 ** 26);
          const g = Float32Array.of(2 ** 26);
          const { tp, sp, gp } = placeBoth(mem, kind, mulberry32(count), t, s, g);
          expect(mem.b.kernels.scaleBoth(tp, v.outer, v.outerStride, count, inner, sp, gp, 1, 1), `${x} * ${f}`).toBe(flag);
          const want = naiveScaleBoth(t, v, s, g, 1, 1);
          expect(want.bad).toBe(flag);
          expect(want.t[at]).toBe(flag ? sign * Infinity : sign * 3.4028234663852886e38);
          expectBits(mem.f32(tp, t.length), want.t);
        }
  });

});

/** One random accumulateScaled or scaleBoth case, placed as for 'js' so that every backend sees the same layout. */
function randomCase(mem: Mem, seed: number, which: 'acc' | 'both') {
  const rng = mulberry32(seed);
  const v = randomFusedView(rng);
  const t = spice(randomFloat32(v.length, rng, 3), rng);
  const s = randomFloat32(v.count, rng, 2);
  const [mode, a, b, p] = [MODES[seed % 3], 1 + Math.floor(rng() * 9), 1 + Math.floor(rng() * 40), POWERS[Math.floor(rng() * POWERS.length)]];
  const acc0 = new Float64Array(b).map(() => rng());
  const g = randomFloat32(b, rng, 2);
  const { tp, sp, ap } = placeFused(mem, 'js', rng, t, s, acc0);
  const gp = mem.base + 768 * 1024;
  mem.put(gp, g);
  const k = mem.b.kernels;
  if (which === 'acc') {
    k.accumulateScaled(tp + 4 * v.start, v.outer, v.outerStride, v.count, v.inner, sp, ap, p, mode, a, b);
    return { p, acc: mem.f64(ap, b) };
  }
  const flag = k.scaleBoth(tp + 4 * v.start, v.outer, v.outerStride, v.count, v.inner, sp, gp, a, b);
  return { p, flag, t: mem.f32(tp, v.length) };
}

describe('backends agree', () => {
  const mems = () => Promise.all(KINDS.map(async (kind) => new Mem(await make(kind))));
  const VIEWS = 2000;

  it(`simd and scalar agree bit for bit on accumulateScaled and scaleBoth over ${VIEWS} random views each; js within 1e-13 (bits at p = Infinity)`, async () => {
    const [simd, scalar, js] = await mems();
    for (let seed = 1; seed <= VIEWS; seed++) {
      const [x, y, z] = [simd, scalar, js].map((m) => randomCase(m, seed, 'acc'));
      expectBits64(y.acc!, x.acc!);
      if (x.p === Infinity) expectBits64(z.acc!, x.acc!);
      else expectClose(z.acc!, x.acc!, 1e-13);
      const [u, w, q] = [simd, scalar, js].map((m) => randomCase(m, seed, 'both'));
      for (const r of [w, q]) {
        expectBits(r.t!, u.t!);
        expect(r.flag).toBe(u.flag);
      }
    }
  });
});
