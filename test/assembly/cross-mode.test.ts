// CrossMode in src/engine/backend.ts mirrors the const enum of assembly/cross-mode.ts, which the Wasm
// kernel reads: checked on the source text, and on what accumulateScaled does with each mode.
// Needs `npm run build:wasm` first (the "pretest" script runs it).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CrossMode, type Backend } from '../../src/engine/backend.js';
import { createWasmBackend, type WasmKind } from '../../src/engine/wasm/bridge.js';
import { expectBits, expectRel, naiveScale, term, type ViewSpec } from '../helpers/naive-kernels.js';
import { mulberry32, randomFloat32 } from '../helpers/random.js';

type ModeName = keyof typeof CrossMode;
const MODES = Object.keys(CrossMode) as ModeName[];

/** The coordinate k of element (o, i, j) that each mode names (by name, not number): idx = (k / a) % b. */
const COORDINATE: Record<ModeName, (o: number, i: number, j: number) => number> = {
  outer: (o) => o,
  inner: (_o, _i, j) => j,
  unit: (_o, i) => i,
};

/** acc[(k / a) % b] += |w'(o,i,j)|^p over the view, w' = f32(w * s[i]) (what `scale` stores), k as the mode names it. */
function reference(t: Float32Array, v: ViewSpec, s: Float32Array, p: number, mode: ModeName, a: number, b: number): Float64Array {
  const w = naiveScale(t, v, s);
  const acc = new Float64Array(b);
  for (let o = 0; o < v.outer; o++)
    for (let i = 0; i < v.count; i++)
      for (let j = 0; j < v.inner; j++) acc[Math.floor(COORDINATE[mode](o, i, j) / a) % b] += term(w[v.start + o * v.outerStride + i * v.inner + j], p);
  return acc;
}

/** Views and (a, b) that reach every kernel path: inner 1 (across units), runs, 8-wide steps, chunks. */
const CASES: { v: ViewSpec; a: number; b: number }[] = [
  { v: { start: 1, outer: 5, outerStride: 45, count: 6, inner: 7 }, a: 1, b: 5 },
  { v: { start: 0, outer: 6, outerStride: 57, count: 3, inner: 17 }, a: 2, b: 3 },
  { v: { start: 2, outer: 9, outerStride: 11, count: 11, inner: 1 }, a: 1, b: 11 },
  { v: { start: 3, outer: 4, outerStride: 80, count: 5, inner: 16 }, a: 1, b: 12 },
  { v: { start: 0, outer: 7, outerStride: 24, count: 8, inner: 3 }, a: 3, b: 2 },
];
const POWERS = [2, 1, 3];

/** Random weights covering the view (plus a few past its end) and its scales. */
function caseData(v: ViewSpec, rng: () => number): { t: Float32Array; s: Float32Array } {
  const t = randomFloat32(v.start + (v.outer - 1) * v.outerStride + v.count * v.inner + 3, rng, 3);
  return { t, s: randomFloat32(v.count, rng, 2) };
}

function maxRelDiff(x: Float64Array, y: Float64Array): number {
  let m = 0;
  for (let k = 0; k < x.length; k++) m = Math.max(m, Math.abs(x[k] - y[k]) / Math.max(Math.abs(x[k]), Math.abs(y[k]), 1e-300));
  return m;
}

const ARENA = 1 << 16;
const align16 = (x: number) => Math.ceil(x / 16) * 16;

/** One accumulateScaled call on copies of t and s in the backend's arena (at `base`), from zeroed accumulators. */
function runKernel(be: Backend, base: number, t: Float32Array, v: ViewSpec, s: Float32Array, p: number, mode: number, a: number, b: number) {
  const tp = base;
  const sp = align16(tp + 4 * t.length);
  const ap = align16(sp + 4 * s.length);
  expect(ap + 8 * b).toBeLessThanOrEqual(base + ARENA);
  new Float32Array(be.buffer, tp, t.length).set(t);
  new Float32Array(be.buffer, sp, s.length).set(s);
  new Float64Array(be.buffer, ap, b).fill(0);
  be.kernels.accumulateScaled(tp + 4 * v.start, v.outer, v.outerStride, v.count, v.inner, sp, ap, p, mode, a, b);
  return { t: new Float32Array(be.buffer, tp, t.length).slice(), acc: new Float64Array(be.buffer, ap, b).slice() };
}

describe('CrossMode agrees with assembly/cross-mode.ts', () => {
  it('the const enum declares the same three names and numbers', () => {
    const src = readFileSync(new URL('../../assembly/cross-mode.ts', import.meta.url), 'utf8');
    const body = /export const enum CrossMode\s*\{([^}]*)\}/.exec(src)?.[1];
    expect(body).toBeDefined();
    const lines = body!
      .split('\n')
      .map((l) => l.replace(/\/\/.*$/, '').trim())
      .filter((l) => l !== '');
    // Every entry must be `Name = <integer>`, so that none escapes the comparison below.
    const entries = lines.map((l) => {
      const m = /^([A-Z]\w*)\s*=\s*(\d+)\s*,?$/.exec(l);
      expect(m, `entry ${JSON.stringify(l)}`).not.toBeNull();
      return [m![1][0].toLowerCase() + m![1].slice(1), Number(m![2])] as const;
    });
    expect(Object.fromEntries(entries)).toEqual(CrossMode);
  });

  it('the cases tell the modes apart: each mode sums differently from the other two', () => {
    const rng = mulberry32(111);
    for (const { v, a, b } of CASES) {
      const { t, s } = caseData(v, rng);
      for (const p of POWERS)
        for (const m of MODES)
          for (const n of MODES) {
            if (m !== n) expect(maxRelDiff(reference(t, v, s, p, m, a, b), reference(t, v, s, p, n, a, b))).toBeGreaterThan(1e-6);
          }
    }
  });

  for (const kind of ['simd', 'scalar'] as WasmKind[]) {
    it(`accumulateScaled(..., CrossMode.<mode>, a, b) on the ${kind} build sums by the coordinate the mode names, reading only`, async () => {
      const be = await createWasmBackend(kind);
      const base = be.reserve(ARENA);
      try {
        const rng = mulberry32(112);
        for (const { v, a, b } of CASES) {
          const { t, s } = caseData(v, rng);
          for (const p of POWERS)
            for (const mode of MODES) {
              const got = runKernel(be, base, t, v, s, p, CrossMode[mode], a, b);
              const where = `${mode} a ${a} b ${b} p ${p} view ${JSON.stringify(v)}`;
              expectBits(got.t, t);
              try {
                expectRel(got.acc, reference(t, v, s, p, mode, a, b), 1e-12);
              } catch (e) {
                throw new Error(`${where}: ${e instanceof Error ? e.message : String(e)}`);
              }
            }
        }
      } finally {
        be.dispose();
      }
    });
  }
});
