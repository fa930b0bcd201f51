// The solve kernel (pending log scales, engine/backend.ts CycleKernels.solve) of every backend
// against naiveSolve, and the backends against each other.
// Needs `npm run build:wasm` first (the "pretest" script runs it).
import { describe, expect, it } from 'vitest';
import type { BackendName } from '../../src/engine/backend.js';
import { make, Mem, misalign } from '../helpers/kernel-memory.js';
import { mulberry32 } from '../helpers/random.js';
import { expectBits, expectBits64, expectClose, naiveSolve } from '../helpers/naive-kernels.js';

const KINDS: BackendName[] = ['simd', 'scalar', 'js'];
const POWERS = [0.5, 1, 2, 3, Infinity];

type Solved = ReturnType<typeof naiveSolve>;

/** Adjacent f32 values differ by 1 (-0 = +0). */
const ordered = (x: number) => {
  const b = new Int32Array(Float32Array.of(x).buffer)[0];
  return b < 0 ? -(b & 0x7fffffff) : b;
};

/** Runs fn, prefixing its failure with the case it was testing. */
function labelled(label: string, fn: () => void): void {
  try {
    fn();
  } catch (e) {
    throw new Error(`${label}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** solve's pointers [sums, logSigma, sigma, sigmaInv, d, dInv, energy] for n units: any byte offset on Wasm, 8-aligned on 'js'. */
function solvePointers(mem: Mem, kind: BackendName, rng: () => number, n: number): number[] {
  return Array.from({ length: 7 }, (_, h) => mem.base + 16 + h * (32 * n + 32) + misalign(kind, rng, 8));
}

/** Puts sums and the log scales u, runs solve and reads back what it wrote. */
function runSolve(mem: Mem, ptrs: number[], sums: Float64Array, n: number, p: number, c: number, omega: number, u: Float64Array): Solved {
  const [qp, lp, sg, si, dp, ip, ep] = ptrs;
  mem.put(qp, sums);
  mem.put(lp, u);
  mem.b.kernels.solve(qp, n, p, c, omega, lp, sg, si, dp, ip, ep);
  return { logSigma: mem.f64(lp, n), sigma: mem.f32(sg, n), sigmaInv: mem.f32(si, n), d: mem.f32(dp, n), dInv: mem.f32(ip, n), energy: mem.f64(ep, 1)[0] };
}

/**
 * got against naiveSolve, which is the spec written out (two logs, four exps per unit). Every backend computes
 * it with fewer transcendentals (log(B / A), 1 / e^n, 1 / e^(n-u), E^2 for e^(2n)), and the Wasm builds with
 * assembly/exp-log.ts (a few ulps, not correctly rounded), so: f32 outputs within 1 f32 ulp (a want of Inf, 0
 * or NaN exactly), logSigma within 4e-15 of the size of the terms of n = u + omega (t - u) (n itself may
 * cancel to near 0), the energy within 1e-14 relative.
 * A dead unit's logSigma is u exactly everywhere (its scale is NaN, no tolerance).
 */
function expectSolve(kind: BackendName, got: Solved, sums: Float64Array, n: number, p: number, c: number, omega: number, u: Float64Array): Solved {
  const want = naiveSolve(sums, n, p, c, omega, u);
  const ulps = 1;
  for (const key of ['sigma', 'sigmaInv', 'd', 'dInv'] as const)
    for (let i = 0; i < n; i++) {
      const [g, w] = [got[key][i], want[key][i]];
      const special = w === 0 || !Number.isFinite(w);
      if (special ? !Object.is(g, w) && !(Number.isNaN(g) && Number.isNaN(w)) : !(Math.abs(ordered(g) - ordered(w)) <= ulps))
        throw new Error(`${key}[${i}]: got ${g}, want ${w}`);
    }
  const e = p === Infinity ? 0.5 : 1 / (2 * p);
  for (let i = 0; i < n; i++) {
    const A = sums[i] + sums[2 * n + i];
    const B = sums[n + i] + sums[3 * n + i];
    const size = Math.abs(u[i]) + Math.abs(omega) * (Math.abs(u[i]) + e * (Math.abs(Math.log(A)) + Math.abs(Math.log(B))) + Math.abs(Math.log(c)) / 2);
    const [g, w] = [got.logSigma[i], want.logSigma[i]];
    if (!Object.is(g, w) && !(Math.abs(g - w) <= 4e-15 * size)) throw new Error(`logSigma[${i}]: got ${g}, want ${w}`);
  }
  expectClose([got.energy], [want.energy], 1e-14);
  if (p === Infinity) expect(got.energy, 'energy').toBe(0);
  return want;
}

describe.each(KINDS)('%s backend: solve', (kind) => {
  it('solve = naiveSolve for every p, c, omega; dead units keep logSigma with d = 1; sigma is Inf / 0 beyond the f32 range', async () => {
    const mem = new Mem(await make(kind));
    const rng = mulberry32(97);
    const n = 23;
    const ptrs = solvePointers(mem, kind, rng, n);
    for (const p of POWERS)
      for (const c of [1, 1.2, 0.7])
        for (const omega of [1, 0.5, 1.5, 1.9]) {
          const sums = Float64Array.from({ length: 4 * n }, () => Math.exp(16 * (rng() - 0.5)) * (rng() < 0.2 ? 0 : 1));
          const u = Float64Array.from({ length: n }, () => 4 * (rng() - 0.5));
          // Dead units 0-8: A or B 0, NaN, negative, Inf (the bad values in Ao / Bo, so that the energy
          // stays finite); 9, 10: e^t beyond the f32 range (A, B finite in f64).
          const set = (i: number, af: number, bf: number, ao: number, bo: number) => [af, bf, ao, bo].forEach((x, h) => (sums[h * n + i] = x));
          set(0, 0, 1, 0, 2);
          set(1, 1, 0, 2, 0);
          set(2, 1, 1, NaN, 1);
          set(3, 1, 1, -3, 1);
          set(4, 0, 0, 0, 0);
          set(5, 1, 1, Infinity, 0);
          set(6, 1, 1, 0, Infinity);
          set(7, 1, 1, 1, NaN);
          set(8, 1, 1, 1, -5);
          set(9, 1e-150, 1e150, 0, 0);
          set(10, 1e150, 1e-150, 0, 0);
          labelled(`p ${p} c ${c} omega ${omega}`, () => {
            const got = runSolve(mem, ptrs, sums, n, p, c, omega, u);
            const want = expectSolve(kind, got, sums, n, p, c, omega, u);
            expect(Number.isFinite(want.energy)).toBe(true);
            const dead = [0, 1, 2, 3, 4, 5, 6, 7, 8];
            expectBits64(Float64Array.from(dead, (i) => got.logSigma[i]), Float64Array.from(dead, (i) => u[i]));
            expect(dead.flatMap((i) => [got.d[i], got.dInv[i]])).toEqual(new Array(2 * dead.length).fill(1));
            // t = +-690 e: beyond the f32 range at every p, and so is n for omega >= 1.
            if (omega >= 1) expect([got.sigma[9], got.sigmaInv[9], got.sigma[10], got.sigmaInv[10]]).toEqual([Infinity, 0, 0, Infinity]);
            // omega 1: sigma is the plain cycle's (B / A)^(1/(2p)) / sqrt(c), to the f32 ulp that exp(log) may cost.
            for (let i = 11; i < n && omega === 1; i++) {
              const [A, B] = [sums[i] + sums[2 * n + i], sums[n + i] + sums[3 * n + i]];
              const x = (p === Infinity ? Math.sqrt(B / A) : Math.pow(B / A, 1 / (2 * p))) / Math.sqrt(c);
              if (A > 0 && B > 0) expect(Math.abs(ordered(got.sigma[i]) - ordered(x)), `unit ${i}`).toBeLessThanOrEqual(1);
            }
          });
        }
  });

  it('solve: sums across the whole f64 range, subnormals included (the table-free ln / exp of assembly/exp-log.ts)', async () => {
    const mem = new Mem(await make(kind));
    const rng = mulberry32(96);
    // A and B from the smallest subnormal to near the f64 maximum, in every pairing.
    const edges = [5e-324, 3e-310, 2.2250738585072014e-308, 1e-200, 1e-30, 0.5, 1, 1.5, 2, 1e30, 1e200, 1.7e308];
    const n = edges.length * edges.length;
    const ptrs = solvePointers(mem, kind, rng, n);
    const sums = new Float64Array(4 * n);
    edges.forEach((a, i) => edges.forEach((b, j) => { sums[i * edges.length + j] = a; sums[n + i * edges.length + j] = b; }));
    for (const p of [1, 2, 0.5, Infinity])
      for (const c of [1, 1e-300, 1e300])
        labelled(`p ${p} c ${c}`, () => {
          const u = new Float64Array(n);
          const got = runSolve(mem, ptrs, sums, n, p, c, 1, u);
          expectSolve(kind, got, sums, n, p, c, 1, u);
        });
  });

  it('solve: omega 1 sets logSigma to t whatever the old u; any other omega gives u + omega (t - u) bit for bit', async () => {
    const mem = new Mem(await make(kind));
    const rng = mulberry32(98);
    const n = 40;
    const ptrs = solvePointers(mem, kind, rng, n);
    const logs = () => Float64Array.from({ length: n }, () => 8 * (rng() - 0.5));
    for (const p of POWERS)
      for (const c of [1, 1.2, 0.7]) {
        const sums = Float64Array.from({ length: 4 * n }, () => Math.exp(40 * (rng() - 0.5)));
        const [u, v] = [logs(), logs()];
        labelled(`p ${p} c ${c}`, () => {
          const t = runSolve(mem, ptrs, sums, n, p, c, 1, u).logSigma;
          expectSolve(kind, runSolve(mem, ptrs, sums, n, p, c, 1, v), sums, n, p, c, 1, v);
          expectBits64(runSolve(mem, ptrs, sums, n, p, c, 1, v).logSigma, t);
          for (const omega of [0.5, 1.5, 1.9]) {
            const got = runSolve(mem, ptrs, sums, n, p, c, omega, u);
            expectBits64(got.logSigma, u.map((x, i) => x + omega * (t[i] - x)));
            expectSolve(kind, got, sums, n, p, c, omega, u);
          }
        });
      }
  });
});

describe('backends agree on solve', () => {
  const mems = () => Promise.all(KINDS.map(async (kind) => new Mem(await make(kind))));

  it('solve: simd and scalar write the same bits (logSigma and energy included); every backend = naiveSolve', async () => {
    const all = await mems();
    const rng = mulberry32(99);
    const n = 200;
    const sums = Float64Array.from({ length: 4 * n }, () => Math.exp(30 * (rng() - 0.5)));
    const u = Float64Array.from({ length: n }, () => 6 * (rng() - 0.5));
    for (const p of POWERS)
      for (const omega of [1, 0.5, 1.5, 1.9]) {
        const out = all.map((mem, k) => {
          const got = runSolve(mem, solvePointers(mem, 'js', mulberry32(1), n), sums, n, p, 1.3, omega, u);
          labelled(`${KINDS[k]} p ${p} omega ${omega}`, () => expectSolve(KINDS[k], got, sums, n, p, 1.3, omega, u));
          return got;
        });
        const [simd, scalar] = out;
        for (const key of ['sigma', 'sigmaInv', 'd', 'dInv'] as const) expectBits(scalar[key], simd[key]);
        expectBits64(scalar.logSigma, simd.logSigma);
        expect(scalar.energy).toBe(simd.energy);
      }
  });
});
