// Engine memory past 2 GiB: byte offsets are plain numbers (never 32-bit signed), the kernels work
// at u32 pointers above 2^31 and up to 2^32, and whatever does not fit in the 4 GiB address space
// is E_MEMORY naming the tensor (never a RangeError), before anything is allocated.
// Memory reserved here is never touched beyond a few pages (Wasm memory and calloc'ed ArrayBuffers
// are committed lazily), so the test needs little RAM.
import { describe, expect, it } from 'vitest';
import { balance } from '../../src/engine/enorm.js';
import type { Backend, BackendName } from '../../src/engine/backend.js';
import { checkFits, layoutEngine } from '../../src/engine/layout.js';
import { align16 } from '../../src/engine/memory.js';
import type { Plan } from '../../src/plan/ir.js';
import { createBackend } from '../../src/engine/select.js';
import { wasmPoolStats } from '../../src/engine/wasm/bridge.js';
import { ENormError, isENormError } from '../../src/errors.js';
import type { Network } from '../../src/network/layers.js';
import { mulberry32, randomFloat32 } from '../helpers/random.js';
import { expectBits, expectRel, naiveAccumulate, naiveAccumulateScaled, naiveEnergy, naiveScale, naiveScaleBoth, naiveSolve, randomFusedView } from '../helpers/naive-kernels.js';

const KINDS: BackendName[] = ['simd', 'scalar', 'js'];
const GiB = 2 ** 30;

function thrown(fn: () => unknown): ENormError {
  try {
    fn();
  } catch (e) {
    expect(isENormError(e), String(e)).toBe(true);
    return e as ENormError;
  }
  throw new Error('did not throw');
}

/** Exact 16-byte round-up in BigInt: an oracle that shares no arithmetic with align16. */
const up16 = (n: number) => Number(((BigInt(n) + 15n) / 16n) * 16n);

/** A plan whose tensors have the given lengths, without allocating them (layout reads lengths only). */
function fakePlan(lengths: number[], companions: number[], units: number): Plan {
  return {
    tensors: lengths.map((n, i) => ({
      id: i, layerIndex: 2 * i, layer: `layer${i}`, role: 'weight', cost: true,
      data: { length: n } as Float32Array,
      companions: Array.from({ length: companions[i] }, () => ({ length: n }) as Float32Array),
    })),
    groups: [{ id: 0, name: 'g', size: units, writers: [], readers: [], layers: ['layer0'] }],
    barriers: [],
  };
}

describe('layout arithmetic past 2^31', () => {
  it('align16 is exact at 2^31 + x, near 2^32 and beyond', () => {
    for (const n of [0, 1, 15, 16, 2 ** 31 - 1, 2 ** 31, 2 ** 31 + 1, 2 ** 31 + 15, 2 ** 31 + 17, 2 ** 32 - 17, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 3]) {
      expect(align16(n), String(n)).toBe(up16(n));
    }
  });

  it('tensors and companions past 2 GiB get exact, 16-aligned, disjoint offsets', () => {
    const lengths = [2 ** 29 + 3, 7, 2 ** 27 + 1, 5];
    const companions = [0, 1, 1, 0];
    const units = 100_001;
    const layout = layoutEngine(fakePlan(lengths, companions, units));
    // Sums [Af | Bf | Ao | Bo] and base [Ab | Bb] (f64), one f64 energy, log sigma (f64), sigma and
    // 1/sigma (f32), the one 1.0, d and 1/d (f32), then the tensors, then the companions.
    let at = 0;
    const take = (bytes: number) => { const p = at; at += up16(bytes); return p; };
    expect(layout.groupSums).toEqual([{ sums: take(32 * units), base: take(16 * units) }]);
    expect(layout.energies).toBe(take(8));
    expect([layout.logSigma, layout.sigma, layout.sigmaInv, layout.ones]).toEqual([take(8 * units), take(4 * units), take(4 * units), take(4)]);
    expect(layout.unitOffset).toEqual([0]);
    expect([layout.d, layout.dInv]).toEqual([take(4 * units), take(4 * units)]);
    const want: number[] = [];
    for (const n of lengths) { want.push(at); at += up16(4 * n); }
    expect(layout.tensors).toEqual(want);
    const wantCompanions = lengths.map((n, i) => Array.from({ length: companions[i] }, () => { const p = at; at += up16(4 * n); return p; }));
    expect(layout.companions).toEqual(wantCompanions);
    expect(layout.bytes).toBe(at);
    // The second tensor starts past 2^31, the companions past 2^31 + 2^29.
    expect(layout.tensors[1]).toBeGreaterThan(2 ** 31);
    expect(layout.companions[2][0]).toBeGreaterThan(2 ** 31 + 2 ** 29);
    for (const p of [...layout.tensors, ...layout.companions.flat()]) expect(p % 16).toBe(0);
  });

  it('checkFits names the first tensor or companion that would end past the limit', () => {
    const plan = fakePlan([2 ** 29, 2 ** 28, 2 ** 28 + 1], [0, 0, 1], 8);
    const layout = layoutEngine(plan); // 2 GiB + 1 GiB + 2 x (1 GiB + 16): past 4 GiB in the companion
    expect(() => checkFits(plan, layout, layout.bytes, 'simd')).not.toThrow();
    const room = 2 ** 32 - 65536;
    const e = thrown(() => checkFits(plan, layout, room, 'simd'));
    expect(e.code).toBe('E_MEMORY');
    expect(e.message).toMatch(/^layer 'layer2' weight \(1\.00 GiB\) does not fit: the network needs 5\.00 GiB of engine memory .*the 'simd' backend can reserve 4\.00 GiB/);
    expect(e.details).toEqual({ layerIndex: 4, layer: 'layer2', tensor: 'weight' });
    const c = thrown(() => checkFits(plan, layout, layout.companions[2][0] + 4, 'js'));
    expect(c.details.tensor).toBe('companion 0 of weight');
  });
});

/** Byte-wise copies, so that any pointer alignment works. */
const put = (b: Backend, ptr: number, a: Float32Array | Float64Array) => new Uint8Array(b.buffer, ptr, a.byteLength).set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
const getF32 = (b: Backend, ptr: number, n: number) => { const o = new Float32Array(n); new Uint8Array(o.buffer).set(new Uint8Array(b.buffer, ptr, 4 * n)); return o; };
const getF64 = (b: Backend, ptr: number, n: number) => { const o = new Float64Array(n); new Uint8Array(o.buffer).set(new Uint8Array(b.buffer, ptr, 8 * n)); return o; };

/** A random kernel view of at most 1000 f32 (4000 bytes), to fit between the test's 4 KiB slots. */
function smallView(rng: () => number) {
  for (;;) {
    const v = randomFusedView(rng);
    if (v.length <= 1000) return v;
  }
}

describe.each(KINDS)('%s backend: the whole 4 GiB address space', (kind) => {
  it('reserve beyond 4 GiB is E_MEMORY and reserves nothing; up to exactly 2^32 works', async () => {
    const b = await createBackend(kind);
    const room = b.available();
    expect(room).toBeGreaterThan(2 ** 32 - 2 ** 20);
    for (const n of [2 ** 32, room + 1, 5 * GiB]) {
      const e = thrown(() => b.reserve(n));
      expect(e.code).toBe('E_MEMORY');
      expect(e.message).toMatch(/exceed the 4 GiB/);
    }
    expect(b.available()).toBe(room);
    const ptr = b.reserve(room);
    expect(ptr + room).toBe(2 ** 32);
    expect(b.buffer.byteLength).toBe(2 ** 32);
    expect(b.available()).toBe(0);
    expect(thrown(() => b.reserve(16)).code).toBe('E_MEMORY');
    b.dispose();
  });

  it('every kernel is exact at pointers 2^31 + x and within the last KiB below 2^32', async () => {
    const b = await createBackend(kind);
    const base = b.reserve(b.available());
    expect(base).toBeLessThan(2 ** 20);
    const k = b.kernels;
    const rng = mulberry32(kind.length);
    // Wasm accepts any byte offset; the 'js' backend needs natural alignment.
    const odd = kind === 'js' ? 0 : 1;
    for (const at of [2 ** 31 + 16 + odd, 2 ** 31 + 2 ** 30 + 64, 2 ** 32 - 16384 + odd]) {
      for (let trial = 0; trial < 12; trial++) {
        const v = smallView(rng);
        const p = [2, 1, 3][trial % 3];
        const t = randomFloat32(v.length, rng, 3);
        const s = randomFloat32(v.count, rng, 2);
        const tp = at;
        const sp = at + 4096;
        const ap = at + 8192 + (kind === 'js' ? 0 : 3); // f64 accumulators, 8-aligned for 'js'
        const acc0 = new Float64Array(Math.max(v.count, 3)).map(() => rng());
        put(b, tp, t);
        put(b, sp, s);
        put(b, ap, acc0.subarray(0, v.count));
        k.accumulate(tp + 4 * v.start, v.outer, v.outerStride, v.count, v.inner, ap, p);
        expectRel(getF64(b, ap, v.count), naiveAccumulate(t, v, acc0.subarray(0, v.count), p), 1e-12);
        expect(k.energy(tp, v.length, p) / naiveEnergy(t, p)).toBeCloseTo(1, 12);
        const mode = trial % 3;
        const [a, bb] = mode === 2 ? [1, v.count] : [1 + (trial % 2), 3];
        put(b, ap, acc0.subarray(0, bb));
        k.accumulateScaled(tp + 4 * v.start, v.outer, v.outerStride, v.count, v.inner, sp, ap, p, mode, a, bb);
        expectBits(getF32(b, tp, v.length), t);
        expectRel(getF64(b, ap, bb), naiveAccumulateScaled(t, v, s, acc0.subarray(0, bb), p, mode, a, bb).acc, 1e-12);
        // scaleBoth with g = s[0..gb) as the second factor, then scale, fill and copy.
        const gb = Math.min(3, v.count);
        const both = naiveScaleBoth(t, v, s, s.subarray(0, gb), a, gb);
        expect(k.scaleBoth(tp + 4 * v.start, v.outer, v.outerStride, v.count, v.inner, sp, sp, a, gb)).toBe(both.bad);
        expectBits(getF32(b, tp, v.length), both.t);
        k.scale(tp + 4 * v.start, v.outer, v.outerStride, v.count, v.inner, sp);
        expectBits(getF32(b, tp, v.length), naiveScale(both.t, v, s));
        k.fill(sp, v.count, 0.5);
        expectBits(getF32(b, sp, v.count), new Float32Array(v.count).fill(0.5));
        k.copy(sp, tp, 4 * v.count);
        expectBits(getF32(b, sp, v.count), getF32(b, tp, v.count));
        // The first non-finite value, and zero over the tensor.
        const bad = Math.floor(rng() * v.length);
        put(b, tp + 4 * bad, Float32Array.of(NaN));
        expect(k.firstNonFinite(tp, v.length)).toBe(bad);
        k.zero(tp, 4 * v.length);
        expect(getF32(b, tp, v.length).every((x) => x === 0)).toBe(true);
      }
      // solve, p = 2, omega = 1: logSigma = t = (log B - log A) / 4 - log(c) / 2 (sums [Af | Bf | Ao | Bo]),
      // sigma = f32(e^t), d = f32(e^(t - u)). 'js' runs naiveSolve's V8 Math.log / exp: the same bits;
      // AssemblyScript's may differ in the last f64 bit: f32 within 2^-23 relative (1 ulp), logSigma
      // (|terms| < 2) within 4e-15 absolute.
      const n = 9;
      const sums = Float64Array.from({ length: 4 * n }, () => 0.5 + rng());
      const u = Float64Array.from({ length: n }, () => rng() - 0.5);
      const [lp, ep] = [at + 384, at + 1024 + (kind === 'js' ? 0 : 5)]; // 8-aligned for 'js', odd on Wasm where at is
      put(b, at, sums);
      put(b, lp, u);
      k.solve(at, n, 2, 1.2, 1, lp, at + 512, at + 640, at + 768, at + 896, ep);
      const want = naiveSolve(sums, n, 2, 1.2, 1, u);
      // naiveSolve is the spec's formula; every backend computes it with fewer transcendentals
      // (test/engine/kernels-solve.test.ts has the tolerances), so within them, not bit for bit.
      for (const [ptr, w] of [[512, want.sigma], [640, want.sigmaInv], [768, want.d], [896, want.dInv]] as const) expectRel(getF32(b, at + ptr, n), w, 2 ** -23);
      getF64(b, lp, n).forEach((x, i) => expect(Math.abs(x - want.logSigma[i])).toBeLessThanOrEqual(4e-15));
      expectRel(getF64(b, ep, 1), [want.energy], 1e-14);
    }
    b.dispose();
  });
});

describe('a network with more than 4 GiB of tensors', () => {
  it('balance() is E_MEMORY naming the tensor, before any engine memory exists; nothing changes', async () => {
    // Two 2 GiB kernels (zero pages, never written): the second ends past 4 GiB.
    const w1 = new Float32Array(2 ** 29);
    const w2 = new Float32Array(2 ** 29);
    w1[12345] = 0.5;
    w2[2 ** 29 - 1] = -0.25;
    const net: Network = [
      { kind: 'dense', name: 'in', weight: w1, shape: [2 ** 14, 2 ** 15] },
      { kind: 'relu' },
      { kind: 'dense', name: 'out', weight: w2, shape: [2 ** 15, 2 ** 14] },
    ];
    const made = wasmPoolStats().instantiated;
    const pooled = wasmPoolStats().pooled;
    // One call (validation reads all 4 GiB); ENorm.create takes the same path, and the 'js' backend
    // the same layout check (above).
    const e = (await balance(net).then(() => null, (x: unknown) => x)) as ENormError;
    expect(isENormError(e), String(e)).toBe(true);
    expect(e.code).toBe('E_MEMORY');
    expect(e.message).toMatch(/^layer 'out' weight \(2\.00 GiB\) does not fit: the network needs 4\.00 GiB of engine memory/);
    expect(e.message).not.toMatch(/\n/);
    expect(e.details).toEqual({ layerIndex: 2, layer: 'out', tensor: 'weight' });
    // Refused from the layout alone: no instance was created or taken from the pool.
    expect(wasmPoolStats()).toEqual({ instantiated: made, pooled });
    expect([w1[12345], w2[2 ** 29 - 1], w1[0], w2[0]]).toEqual([0.5, -0.25, 0, 0]);
  });
});
