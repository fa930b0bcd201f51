// The WGSL parameter structs and the TS packing come from one table per program (PARAMS).
import { describe, expect, it } from 'vitest';
import { packParams, PARAM_WORDS, PARAMS, paramStruct, SHADERS, type ShaderName } from '../../src/engine/webgpu/shaders.js';

const names = Object.keys(PARAMS) as ShaderName[];
const f32Bits = (x: number) => new Uint32Array(Float32Array.of(x).buffer)[0];

describe('WGSL parameter structs', () => {
  it('each program declares its own named struct, generated from its table, and reads only its fields', () => {
    expect(Object.keys(SHADERS).sort()).toEqual([...names].sort());
    for (const name of names) {
      const code = SHADERS[name];
      const fields = Object.keys(PARAMS[name]);
      expect(fields.length, name).toBeLessThanOrEqual(PARAM_WORDS);
      expect(code, name).toContain(paramStruct(name));
      expect(code, name).toMatch(new RegExp(String.raw`var<uniform> params: ${name[0].toUpperCase()}${name.slice(1)}Params;`));
      const used = new Set([...code.matchAll(/params\.(\w+)/g)].map((m) => m[1]));
      expect([...used].filter((f) => !fields.includes(f)), `${name} reads fields it does not declare`).toEqual([]);
      expect(code, name).not.toMatch(/array<vec4<u32>/); // no shared indexed slot array
    }
  });

  it("solve's outgoing sums have a name; the packing puts each field at its table position, f32 as bits", () => {
    expect(paramStruct('solve')).toBe('struct SolveParams { incoming: u32, outgoing: u32, count: u32, p: f32, c: f32, d: u32, dInv: u32 }');
    const block = packParams('solve', { incoming: 10, outgoing: 20, count: 3, p: 1.5, c: 1.2, d: 40, dInv: 50 });
    expect(block.length).toBe(PARAM_WORDS);
    expect(Array.from(block.subarray(0, 8))).toEqual([10, 20, 3, f32Bits(1.5), f32Bits(1.2), 40, 50, 0]);
    const scale = packParams('scale', { w: 1, outer: 2, outerStride: 3, count: 4, inner: 5, s: 6 });
    expect(Array.from(scale.subarray(0, 7))).toEqual([1, 2, 3, 4, 5, 6, 0]);
  });
});
