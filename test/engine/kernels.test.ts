// Kernel semantics of every backend (simd, scalar, js) against naive float64 code.
// Needs `npm run build:wasm` first (the "pretest" script runs it).
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { BackendName } from '../../src/engine/backend.js';
import { createBackend } from '../../src/engine/select.js';
import { simdSupported } from '../../src/engine/wasm/bridge.js';
import { WASM_BASE64 as SCALAR_WASM_BASE64 } from '../../src/engine/wasm/binaries.scalar.generated.js';
import { WASM_BASE64 as SIMD_WASM_BASE64 } from '../../src/engine/wasm/binaries.simd.generated.js';
import { isENormError } from '../../src/errors.js';
import { make, Mem, misalign, placeFused } from '../helpers/kernel-memory.js';
import { mulberry32, randomFloat32 } from '../helpers/random.js';
import { expectBits, expectRel, naiveAccumulate, term, naiveEnergy, naiveScale, naiveScaleAccumulate, randomFusedView, type ViewSpec } from '../helpers/naive-kernels.js';

const KINDS: BackendName[] = ['simd', 'scalar', 'js'];
const POWERS = [2, 1, 3, 0.5];

const COUNTS = [1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 17, 31];
const INNERS = [2, 3, 4, 5, 7, 8, 9, 12, 16, 17, 33];

function randomView(rng: () => number, inner1: boolean): ViewSpec & { length: number } {
  const pick = <T>(a: T[]): T => a[Math.floor(rng() * a.length)];
  const count = pick(COUNTS);
  const inner = inner1 ? 1 : pick(INNERS);
  const outer = 1 + Math.floor(rng() * 5);
  const outerStride = count * inner + Math.floor(rng() * 8);
  const start = Math.floor(rng() * 6);
  const length = start + (outer - 1) * outerStride + count * inner + Math.floor(rng() * 5);
  return { start, outer, outerStride, count, inner, length };
}

describe('wasm binaries', () => {
  const decode = (b64: string) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const EXPORTS = ['accumulate', 'energy', 'firstNonFinite', 'memory', 'scale', 'scaleAccumulate', 'solveScales', 'zero'];

  it('import nothing and export exactly the kernels and memory', () => {
    for (const b64 of [SIMD_WASM_BASE64, SCALAR_WASM_BASE64]) {
      const m = new WebAssembly.Module(decode(b64));
      expect(WebAssembly.Module.imports(m)).toEqual([]);
      expect(WebAssembly.Module.exports(m).map((e) => e.name).sort()).toEqual(EXPORTS);
    }
  });

  it('both validate; SIMD is detected in Node; only the simd build holds SIMD instructions', () => {
    expect(WebAssembly.validate(decode(SCALAR_WASM_BASE64))).toBe(true);
    expect(simdSupported()).toBe(true);
    const simdOp = /\b(v128|i8x16|i16x8|i32x4|i64x2|f32x4|f64x2)\b/;
    for (const [kind, want] of [['scalar', false], ['simd', true]] as const) {
      const wat = `build/enorm.${kind}.wat`;
      if (!existsSync(wat)) continue; // text output of `npm run build:wasm`
      expect(simdOp.test(readFileSync(wat, 'utf8'))).toBe(want);
    }
  });

  it('createBackend picks simd for auto, honours explicit choices, rejects unknown ones', async () => {
    expect((await createBackend()).name).toBe('simd');
    for (const k of KINDS) expect((await createBackend(k)).name).toBe(k);
    const err = await createBackend('gpu' as never).catch((e: unknown) => e);
    expect(isENormError(err) && err.code).toBe('E_OPTION');
  });
});

describe.each(KINDS)('%s backend', (kind) => {
  it('reserve returns 16-aligned, disjoint regions, grows memory and keeps contents', async () => {
    const b = await make(kind);
    const p1 = b.reserve(100);
    expect(p1 % 16).toBe(0);
    expect(p1).toBeGreaterThan(0);
    new Float32Array(b.buffer, p1, 25).fill(7);
    const p2 = b.reserve(5 << 20);
    expect(p2 % 16).toBe(0);
    expect(p2).toBeGreaterThanOrEqual(p1 + 100);
    expect(b.buffer.byteLength).toBeGreaterThanOrEqual(p2 + (5 << 20));
    expect(new Float32Array(b.buffer, p1, 25).every((x) => x === 7)).toBe(true);
    // Each backend has its own memory.
    const other = await make(kind);
    expect(other.buffer).not.toBe(b.buffer);
  });

  for (const inner1 of [true, false]) {
    const shape = inner1 ? 'inner == 1' : 'inner > 1';

    it(`accumulate matches float64 on random views (${shape})`, async () => {
      const mem = new Mem(await make(kind));
      const k = mem.b.kernels;
      const rng = mulberry32(inner1 ? 11 : 12);
      for (let trial = 0; trial < 60; trial++) {
        const p = POWERS[trial % POWERS.length];
        const v = randomView(rng, inner1);
        const t = randomFloat32(v.length, rng, 3);
        const acc0 = new Float64Array(v.count).map(() => rng());
        const tp = mem.base + 64 + misalign(kind, rng, 4);
        const ap = mem.base + 256 * 1024 + misalign(kind, rng, 8);
        mem.put(tp, t);
        mem.put(ap, acc0);
        k.accumulate(tp + 4 * v.start, v.outer, v.outerStride, v.count, v.inner, ap, p);
        expectRel(mem.f64(ap, v.count), naiveAccumulate(t, v, acc0, p), 1e-12);
        expectBits(mem.f32(tp, v.length), t); // read-only
      }
    });

    it(`scale is one exact f32 multiply per element, nothing outside the view (${shape})`, async () => {
      const mem = new Mem(await make(kind));
      const k = mem.b.kernels;
      const rng = mulberry32(inner1 ? 21 : 22);
      for (let trial = 0; trial < 60; trial++) {
        const v = randomView(rng, inner1);
        const t = randomFloat32(v.length, rng, 5);
        const s = randomFloat32(v.count, rng, 4);
        const tp = mem.base + 64 + misalign(kind, rng, 4);
        const sp = mem.base + 256 * 1024 + misalign(kind, rng, 4);
        mem.put(tp, t);
        mem.put(sp, s);
        k.scale(tp + 4 * v.start, v.outer, v.outerStride, v.count, v.inner, sp);
        expectBits(mem.f32(tp, v.length), naiveScale(t, v, s));
      }
    });

    it(`accumulate stays finite and exact for |w| = 1e-30 and 1e30 (${shape})`, async () => {
      const mem = new Mem(await make(kind));
      const rng = mulberry32(inner1 ? 31 : 32);
      for (const mag of [1e-30, 1e30]) {
        const v = randomView(rng, inner1);
        const t = randomFloat32(v.length, rng).map((x) => Math.sign(x || 1) * mag * (1 + Math.abs(x)));
        const tp = mem.base + 16;
        const ap = mem.base + 256 * 1024;
        mem.put(tp, t);
        mem.put(ap, new Float64Array(v.count));
        mem.b.kernels.accumulate(tp + 4 * v.start, v.outer, v.outerStride, v.count, v.inner, ap, 2);
        const got = mem.f64(ap, v.count);
        for (const g of got) expect(Number.isFinite(g) && g > 0).toBe(true);
        expectRel(got, naiveAccumulate(t, v, new Float64Array(v.count), 2), 1e-12);
      }
    });
  }

  it('accumulate and scale do nothing for empty views', async () => {
    const mem = new Mem(await make(kind));
    const t = randomFloat32(64, mulberry32(5));
    const acc = new Float64Array([1, 2, 3, 4]);
    mem.put(mem.base, t);
    mem.put(mem.base + 1024, acc);
    mem.put(mem.base + 2048, new Float32Array([2, 2, 2, 2]));
    for (const [outer, count, inner] of [[0, 4, 1], [2, 0, 1], [0, 4, 3], [2, 0, 3]]) {
      mem.b.kernels.accumulate(mem.base, outer, 16, count, inner, mem.base + 1024, 2);
      mem.b.kernels.scale(mem.base, outer, 16, count, inner, mem.base + 2048);
    }
    expectBits(mem.f32(mem.base, 64), t);
    expect(Array.from(mem.f64(mem.base + 1024, 4))).toEqual([1, 2, 3, 4]);
  });

  it('scaleAccumulate = scale bit for bit, plus accumulate of the new values, every mode, a and b', async () => {
    const mem = new Mem(await make(kind));
    const k = mem.b.kernels;
    const rng = mulberry32(81);
    const guard = 12345.5;
    for (const mode of [0, 1, 2])
      // a = 9 and b = 9, 12 also reach the 8-wide SIMD steps of the run and across-accumulator paths.
      for (const a of [1, 2, 3, 9])
        for (const b of [1, 3, 4, 5, 7, 9, 12, 40])
          for (const p of POWERS)
            for (let trial = 0; trial < 4; trial++) {
              const v = randomFusedView(rng);
              const t = randomFloat32(v.length, rng, 3);
              const s = randomFloat32(v.count, rng, 2);
              // b accumulators between two guards.
              const acc0 = new Float64Array(b + 2).map(() => rng());
              acc0[0] = guard;
              acc0[b + 1] = guard;
              const { tp, sp, ap } = placeFused(mem, kind, rng, t, s, acc0);
              k.scaleAccumulate(tp + 4 * v.start, v.outer, v.outerStride, v.count, v.inner, sp, ap + 8, p, mode, a, b);
              const want = naiveScaleAccumulate(t, v, s, acc0.subarray(1, b + 1), p, mode, a, b);
              const where = `mode ${mode} a ${a} b ${b} p ${p} view ${JSON.stringify(v)}`;
              try {
                // The whole buffer: the view scaled exactly as `scale` does, everything else untouched.
                expectBits(mem.f32(tp, v.length), naiveScale(t, v, s));
                const acc = mem.f64(ap, b + 2);
                expect([acc[0], acc[b + 1]]).toEqual([guard, guard]);
                expectRel(acc.subarray(1, b + 1), want.acc, 1e-12);
                expectBits(mem.f32(sp, v.count), s);
              } catch (e) {
                throw new Error(`${where}: ${e instanceof Error ? e.message : String(e)}`);
              }
            }
  });

  it('scaleAccumulate writes what scale writes, on the same memory', async () => {
    const mem = new Mem(await make(kind));
    const k = mem.b.kernels;
    const rng = mulberry32(82);
    for (let trial = 0; trial < 40; trial++) {
      const v = randomFusedView(rng);
      const t = randomFloat32(v.length, rng, 5);
      const s = randomFloat32(v.count, rng, 4);
      const tp = mem.base + 64 + misalign(kind, rng, 4);
      const up = mem.base + 1024 * 1024 + (tp % 16);
      const sp = mem.base + 256 * 1024 + misalign(kind, rng, 4);
      mem.put(tp, t);
      mem.put(up, t);
      mem.put(sp, s);
      mem.put(mem.base + 512 * 1024, new Float64Array(16));
      k.scale(up + 4 * v.start, v.outer, v.outerStride, v.count, v.inner, sp);
      k.scaleAccumulate(tp + 4 * v.start, v.outer, v.outerStride, v.count, v.inner, sp, mem.base + 512 * 1024, 2, trial % 2, 1 + (trial % 3), 7);
      expectBits(mem.f32(tp, v.length), mem.f32(up, v.length));
    }
  });

  it('scaleAccumulate stays finite and exact for |w| = 1e-30 and 1e30', async () => {
    const mem = new Mem(await make(kind));
    const rng = mulberry32(83);
    for (const mag of [1e-30, 1e30])
      for (const p of POWERS)
        for (const [mode, a, b] of [[0, 1, 3], [0, 2, 4], [1, 1, 4], [1, 1, 5], [1, 2, 3], [1, 3, 1], [2, 1, 64], [2, 2, 3]]) {
          const v = randomFusedView(rng);
          const t = randomFloat32(v.length, rng).map((x) => Math.sign(x || 1) * mag * (1 + Math.abs(x)));
          const s = randomFloat32(v.count, rng).map((x) => Math.sign(x || 1) * (0.5 + Math.abs(x)));
          const tp = mem.base + 16;
          const sp = mem.base + 128 * 1024;
          const ap = mem.base + 256 * 1024;
          mem.put(tp, t);
          mem.put(sp, s);
          mem.put(ap, new Float64Array(b));
          mem.b.kernels.scaleAccumulate(tp + 4 * v.start, v.outer, v.outerStride, v.count, v.inner, sp, ap, p, mode, a, b);
          const got = mem.f64(ap, b);
          const want = naiveScaleAccumulate(t, v, s, new Float64Array(b), p, mode, a, b);
          for (let y = 0; y < b; y++) {
            if (want.hits[y] > 0) expect(Number.isFinite(got[y]) && got[y] > 0).toBe(true);
            else expect(got[y]).toBe(0);
          }
          expectRel(got, want.acc, 1e-12);
        }
  });

  it('scaleAccumulate on a dense [X, Y] tensor: scaled rows give column sums, scaled columns give row sums', async () => {
    const mem = new Mem(await make(kind));
    const k = mem.b.kernels;
    const rng = mulberry32(84);
    const tp = mem.base + 16;
    const up = mem.base + 1024 * 1024;
    const sp = mem.base + 512 * 1024;
    const ap = mem.base + 768 * 1024;
    const bp = mem.base + 896 * 1024;
    for (const [X, Y] of [[1, 1], [1, 5], [5, 1], [3, 7], [9, 4], [17, 33], [64, 40], [40, 64]]) {
      for (const p of POWERS) {
        const t = randomFloat32(X * Y, rng, 3);
        for (const rows of [true, false]) {
          const n = rows ? X : Y; // scaled units
          const m = rows ? Y : X; // accumulated units
          const s = randomFloat32(n, rng, 2);
          mem.put(tp, t);
          mem.put(up, t);
          mem.put(sp, s);
          mem.put(ap, new Float64Array(m));
          mem.put(bp, new Float64Array(m));
          if (rows) {
            // Scale rows x (view outer 1, count X, inner Y); column y accumulates j = y: mode 1, a 1, b Y.
            k.scaleAccumulate(tp, 1, X * Y, X, Y, sp, ap, p, 1, 1, Y);
            k.scale(up, 1, X * Y, X, Y, sp);
            k.accumulate(up, X, Y, Y, 1, bp, p);
          } else {
            // Scale columns y (view outer X, stride Y, count Y, inner 1); row x is o: mode 0, a 1, b X.
            k.scaleAccumulate(tp, X, Y, Y, 1, sp, ap, p, 0, 1, X);
            k.scale(up, X, Y, Y, 1, sp);
            k.accumulate(up, 1, X * Y, X, Y, bp, p);
          }
          const w = mem.f32(up, X * Y);
          expectBits(mem.f32(tp, X * Y), w);
          const want = new Float64Array(m);
          for (let x = 0; x < X; x++) for (let y = 0; y < Y; y++) want[rows ? y : x] += term(w[x * Y + y], p);
          expectRel(mem.f64(ap, m), mem.f64(bp, m), 1e-12);
          expectRel(mem.f64(ap, m), want, 1e-12);
        }
      }
    }
  });

  it('scaleAccumulate does nothing for empty views', async () => {
    const mem = new Mem(await make(kind));
    const t = randomFloat32(64, mulberry32(85));
    mem.put(mem.base, t);
    mem.put(mem.base + 1024, new Float64Array([1, 2, 3, 4]));
    mem.put(mem.base + 2048, new Float32Array([2, 2, 2, 2]));
    for (const [outer, count, inner] of [[0, 4, 1], [2, 0, 1], [0, 4, 3], [2, 0, 3], [2, 4, 0]])
      for (const mode of [0, 1])
        mem.b.kernels.scaleAccumulate(mem.base, outer, 16, count, inner, mem.base + 2048, mem.base + 1024, 2, mode, 1, 4);
    expectBits(mem.f32(mem.base, 64), t);
    expect(Array.from(mem.f64(mem.base + 1024, 4))).toEqual([1, 2, 3, 4]);
  });

  it('energy matches float64 for every length and p, including 1e-30 and 1e30', async () => {
    const mem = new Mem(await make(kind));
    const rng = mulberry32(41);
    for (const n of [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 33, 100, 1001]) {
      for (const p of POWERS) {
        const t = randomFloat32(n, rng, 2);
        const ptr = mem.base + 64 + misalign(kind, rng, 4);
        mem.put(ptr, t);
        expectRel([mem.b.kernels.energy(ptr, n, p)], [naiveEnergy(t, p)], 1e-12);
      }
    }
    for (const mag of [1e-30, 1e30]) {
      const t = randomFloat32(37, rng).map((x) => Math.sign(x || 1) * mag);
      mem.put(mem.base + 20, t);
      const e = mem.b.kernels.energy(mem.base + 20, t.length, 2);
      expect(Number.isFinite(e) && e > 0).toBe(true);
      expectRel([e], [naiveEnergy(t, 2)], 1e-12);
    }
    expect(mem.b.kernels.energy(mem.base, 0, 2)).toBe(0);
  });

  it('solveScales follows (b/a)^(1/(2p)) / sqrt(c), dead units get 1', async () => {
    const mem = new Mem(await make(kind));
    const k = mem.b.kernels;
    const rng = mulberry32(51);
    const n = 13;
    const ip = mem.base + 16;
    const op = mem.base + 1024;
    const dp = mem.base + 2048;
    const ep = mem.base + 3072;
    for (const p of POWERS) {
      for (const c of [1, 1.2, 0.7]) {
        const a = new Float64Array(n).map(() => Math.exp(20 * (rng() - 0.5)));
        const b = new Float64Array(n).map(() => Math.exp(20 * (rng() - 0.5)));
        const dead = [2, 5, 9];
        a[2] = 0;
        b[5] = 0;
        a[9] = 0;
        b[9] = 0;
        mem.put(ip, a);
        mem.put(op, b);
        k.solveScales(ip, op, n, p, c, dp, ep);
        const d = mem.f32(dp, n);
        const dInv = mem.f32(ep, n);
        for (let i = 0; i < n; i++) {
          if (dead.includes(i)) {
            expect([d[i], dInv[i]]).toEqual([1, 1]);
            continue;
          }
          const x = Math.pow(b[i] / a[i], 1 / (2 * p)) / Math.sqrt(c);
          // f32 results from f64 math: allow one f32 ulp for pow implementations that differ in the last f64 bit.
          expectRel([d[i]], [Math.fround(x)], 2 ** -23);
          expectRel([dInv[i]], [Math.fround(1 / x)], 2 ** -23);
        }
      }
    }
  });

  it('solveScales returns 1 for NaN, negative and non-finite f64 results; f32 overflow shows', async () => {
    const mem = new Mem(await make(kind));
    // Last two: finite in f64 but outside f32, stored as Inf / 0 so the engine reports E_OVERFLOW.
    const a = new Float64Array([NaN, 1, Infinity, 1, 1e-300, 1, -1, 4, 1e-150, 1e150]);
    const b = new Float64Array([1, NaN, 1, Infinity, 1e300, -1, 1, 1, 1e150, 1e-150]);
    const n = a.length;
    mem.put(mem.base, a);
    mem.put(mem.base + 1024, b);
    mem.b.kernels.solveScales(mem.base, mem.base + 1024, n, 1, 1, mem.base + 2048, mem.base + 3072);
    const d = Array.from(mem.f32(mem.base + 2048, n));
    const dInv = Array.from(mem.f32(mem.base + 3072, n));
    expect(d).toEqual([1, 1, 1, 1, 1, 1, 1, 0.5, Infinity, 0]);
    expect(dInv).toEqual([1, 1, 1, 1, 1, 1, 1, 2, 0, Infinity]);
  });

  it('firstNonFinite finds NaN, +Inf and -Inf at any position, else -1', async () => {
    const mem = new Mem(await make(kind));
    const rng = mulberry32(61);
    const n = 37;
    const clean = randomFloat32(n, rng, 1e38);
    clean[3] = 3.4028234663852886e38; // f32 max is finite
    clean[4] = 1e-45; // subnormal is finite
    const ptr = mem.base + 64 + misalign(kind, rng, 4);
    mem.put(ptr, clean);
    expect(mem.b.kernels.firstNonFinite(ptr, n)).toBe(-1);
    expect(mem.b.kernels.firstNonFinite(ptr, 0)).toBe(-1);
    for (const bad of [NaN, Infinity, -Infinity]) {
      for (const at of [0, 1, 2, 3, 4, 5, 7, 8, 31, 32, 33, 35, 36]) {
        const t = clean.slice();
        t[at] = bad;
        if (at + 6 < n) t[at + 6] = NaN; // a later one must not win
        mem.put(ptr, t);
        expect(mem.b.kernels.firstNonFinite(ptr, n)).toBe(at);
        // Past the end does not count.
        expect(mem.b.kernels.firstNonFinite(ptr, at)).toBe(-1);
      }
    }
  });

  it('zero clears exactly the given bytes', async () => {
    const mem = new Mem(await make(kind));
    const u8 = new Uint8Array(mem.b.buffer, mem.base, 256);
    u8.fill(0xff);
    mem.b.kernels.zero(mem.base + 3, 101);
    for (let i = 0; i < 256; i++) expect(u8[i]).toBe(i >= 3 && i < 104 ? 0 : 0xff);
    mem.b.kernels.zero(mem.base, 0);
    expect(u8[0]).toBe(0xff);
  });
});

describe('backends agree bit for bit on scale and closely on sums', () => {
  it('simd, scalar and js give the same results on a large view', async () => {
    const rng = mulberry32(71);
    const v: ViewSpec = { start: 3, outer: 9, outerStride: 777, count: 61, inner: 11 };
    const t = randomFloat32(3 + 8 * 777 + 61 * 11, rng);
    const s = randomFloat32(61, rng, 2);
    const results = await Promise.all(
      KINDS.map(async (kind) => {
        const mem = new Mem(await make(kind));
        const tp = mem.base + 16;
        const ap = mem.base + 64 * 1024;
        const sp = mem.base + 128 * 1024;
        mem.put(tp, t);
        mem.put(ap, new Float64Array(v.count));
        mem.put(sp, s);
        mem.b.kernels.scale(tp + 4 * v.start, v.outer, v.outerStride, v.count, v.inner, sp);
        mem.b.kernels.accumulate(tp + 4 * v.start, v.outer, v.outerStride, v.count, v.inner, ap, 2);
        return { t: mem.f32(tp, t.length), acc: mem.f64(ap, v.count) };
      }),
    );
    for (const r of results.slice(1)) {
      expectBits(r.t, results[0].t);
      expectRel(r.acc, results[0].acc, 1e-13);
    }
  });
});
