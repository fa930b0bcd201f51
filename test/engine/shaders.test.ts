// The WGSL parameter structs and the TS packing come from one table per program (PARAMS).
import { describe, expect, it } from 'vitest';
import { NO_SCALE, packParams, PARAM_WORDS, PARAMS, paramStruct, SHADERS, type ShaderName } from '../../src/engine/webgpu/shaders.js';

const names = Object.keys(PARAMS) as ShaderName[];
const f32Bits = (x: number) => new Uint32Array(Float32Array.of(x).buffer)[0];

describe('WGSL parameter structs', () => {
  it('each program declares its own named struct, generated from its table, and reads exactly its fields', () => {
    expect(Object.keys(SHADERS).sort()).toEqual([...names].sort());
    for (const name of names) {
      const code = SHADERS[name];
      const fields = Object.keys(PARAMS[name]);
      expect(fields.length, name).toBeLessThanOrEqual(PARAM_WORDS);
      expect(code, name).toContain(paramStruct(name));
      expect(code, name).toMatch(new RegExp(String.raw`var<uniform> params: ${name[0].toUpperCase()}${name.slice(1)}Params;`));
      const used = new Set([...code.matchAll(/params\.(\w+)/g)].map((m) => m[1]));
      expect([...used].filter((f) => !fields.includes(f)), `${name} reads fields it does not declare`).toEqual([]);
      expect(fields.filter((f) => !used.has(f)), `${name} declares fields it never reads`).toEqual([]);
      expect(code, name).not.toMatch(/array<vec4<u32>/); // no shared indexed slot array
    }
  });

  it('the programs of the cycle kernels; the packing puts each field at its table position, f32 as bits', () => {
    expect(names).toEqual(['partialSums', 'gatherSums', 'scale', 'scaleBoth', 'solve', 'fill', 'copy', 'scanFinite']);
    expect(paramStruct('solve')).toBe(
      'struct SolveParams { sums: u32, count: u32, e: f32, h: f32, omega: f32, logSigma: u32, sigma: u32, sigmaInv: u32, d: u32, dInv: u32 }',
    );
    const block = packParams('solve', { sums: 10, count: 3, e: 0.25, h: -Infinity, omega: 1.5, logSigma: 30, sigma: 40, sigmaInv: 50, d: 60, dInv: 70 });
    expect(block.length).toBe(PARAM_WORDS);
    expect(Array.from(block.subarray(0, 11))).toEqual([10, 3, f32Bits(0.25), f32Bits(-Infinity), f32Bits(1.5), 30, 40, 50, 60, 70, 0]);
    const sums = packParams('partialSums', { w: 1, outer: 2, outerStride: 3, count: 4, inner: 5, s: NO_SCALE, p: 2, mode: 1, a: 6, b: 7, chunks: 8 });
    expect(Array.from(sums.subarray(0, 12))).toEqual([1, 2, 3, 4, 5, 0xffffffff, f32Bits(2), 1, 6, 7, 8, 0]);
    expect(Array.from(packParams('fill', { w: 9, n: 2, x: -1.5 }).subarray(0, 4))).toEqual([9, 2, f32Bits(-1.5), 0]);
  });
});
