// Kernel semantics of every backend (simd, scalar, js) against naive float64 code; the deferred-scale
// kernels (accumulateScaled, scaleBoth, solve) are in kernels-deferred.test.ts.
// Needs `npm run build:wasm` first (the "pretest" script runs it).
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { BackendName } from '../../src/engine/backend.js';
import { createBackend } from '../../src/engine/select.js';
import { simdSupported } from '../../src/engine/wasm/bridge.js';
import { WASM_BASE64 as SCALAR_WASM_BASE64 } from '../../src/engine/wasm/binaries.scalar.generated.js';
import { WASM_BASE64 as SIMD_WASM_BASE64 } from '../../src/engine/wasm/binaries.simd.generated.js';
import { isENormError } from '../../src/errors.js';
import { make, Mem, misalign } from '../helpers/kernel-memory.js';
import { mulberry32, randomFloat32 } from '../helpers/random.js';
import { expectBits, expectBits64, expectRel, naiveAccumulate, naiveEnergy, naiveScale, type ViewSpec } from '../helpers/naive-kernels.js';

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
  const EXPORTS = ['accumulate', 'accumulateScaled', 'copy', 'energy', 'fill', 'firstNonFinite', 'memory', 'scale', 'scaleBoth', 'solve', 'zero'];

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
      for (const at of [0, 1, 2, 3, 4, 5, 7, 8, 15, 16, 17, 20, 31, 32, 33, 35, 36]) {
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

  it('fill sets exactly n f32; copy moves exactly the given bytes', async () => {
    const mem = new Mem(await make(kind));
    const k = mem.b.kernels;
    const rng = mulberry32(98);
    for (const n of [0, 1, 3, 4, 5, 8, 17, 100]) {
      const ptr = mem.base + 64 + misalign(kind, rng, 4);
      const before = randomFloat32(n + 8, rng);
      mem.put(ptr - 16, before);
      for (const x of [Math.fround(1.7), -0, 1e-45, Infinity]) {
        k.fill(ptr, n, x);
        const got = mem.f32(ptr - 16, n + 8);
        expectBits(got.subarray(0, 4), before.subarray(0, 4));
        expectBits(got.subarray(4, 4 + n), new Float32Array(n).fill(x));
        expectBits(got.subarray(4 + n), before.subarray(4 + n));
      }
      const src = randomFloat32(n + 2, rng);
      const dst = mem.base + 8192 + misalign(kind, rng, 4);
      mem.put(mem.base + 4096, src);
      mem.put(dst - 4, new Float32Array(n + 2).fill(9));
      k.copy(dst, mem.base + 4096 + 4, 4 * n);
      expectBits(mem.f32(dst - 4, n + 2), Float32Array.of(9, ...src.subarray(1, 1 + n), 9));
    }
  });
});

describe('backends agree bit for bit on scale, simd and scalar on sums too', () => {
  it('simd, scalar and js give the same results on a large view (js sums within 1e-13)', async () => {
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
    for (const r of results.slice(1)) expectBits(r.t, results[0].t);
    // Both Wasm builds sum in one order (assembly/inline/sum-run.ts); the 'js' backend in its own.
    expectBits64(results[1].acc, results[0].acc);
    expectRel(results[2].acc, results[0].acc, 1e-13);
  });
});
