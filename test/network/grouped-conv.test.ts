/**
 * conv2d with `groups`: the geometry against a brute-force definition (every element's input channel
 * and output unit, and the reader blocks the compiler turns into views), the float64 forward pass
 * against a naive grouped convolution and against real tfjs (tf.conv2d on each group's slice,
 * concatenated), validation, and groups = 1 giving the plan it always gave.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { ENormError } from '../../src/errors.js';
import { forward } from '../../src/network/forward.js';
import { groupsOf, inputUnits, kernelDims, outputUnitOf, readBlocks, readView, writeView, type KernelDims } from '../../src/network/geometry.js';
import type { Conv2DLayer, ConvLayout, Network } from '../../src/network/layers.js';
import { mulberry32, normalArray } from '../../src/network/random.js';
import { validateLayers } from '../../src/network/validate.js';
import { compilePlan } from '../../src/plan/compile.js';
import { randomInputs } from '../helpers/nets.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Where one flat weight element sits, written out from the layout definitions: tap, input channel (of the whole input), output unit. */
interface Coord { ky: number; kx: number; channel: number; unit: number }

/** [kh, kw, cpg, cout] ('hwio') or [cout, cpg, kh, kw] ('oihw'); output o reads channels of group floor(o / opg). */
function definition(layout: ConvLayout, d: KernelDims, groups: number): { shape: [number, number, number, number]; coords: Coord[] } {
  const { kh, kw, cin: cpg, cout } = d;
  const opg = cout / groups;
  const range = (n: number) => Array.from({ length: n }, (_, i) => i);
  const coords: Coord[] = [];
  const channel = (o: number, i: number) => Math.floor(o / opg) * cpg + i;
  if (layout === 'hwio') {
    for (const ky of range(kh)) for (const kx of range(kw)) for (const i of range(cpg)) for (const o of range(cout)) coords.push({ ky, kx, channel: channel(o, i), unit: o });
    return { shape: [kh, kw, cpg, cout], coords };
  }
  for (const o of range(cout)) for (const i of range(cpg)) for (const ky of range(kh)) for (const kx of range(kw)) coords.push({ ky, kx, channel: channel(o, i), unit: o });
  return { shape: [cout, cpg, kh, kw], coords };
}

const GEOMETRY = [
  { groups: 2, d: { kh: 2, kw: 3, cin: 2, cout: 6 } },
  { groups: 3, d: { kh: 3, kw: 2, cin: 2, cout: 6 } },
  { groups: 3, d: { kh: 1, kw: 1, cin: 3, cout: 9 } },
  { groups: 2, d: { kh: 2, kw: 2, cin: 1, cout: 4 } },
].flatMap((c) => (['hwio', 'oihw'] as const).map((layout) => ({ ...c, layout })));

function grouped(layout: ConvLayout, shape: [number, number, number, number], groups: number, seed = 1, name = 'g'): Conv2DLayer {
  const size = shape.reduce((a, b) => a * b, 1);
  const rng = mulberry32(seed);
  const cout = layout === 'hwio' ? shape[3] : shape[0];
  return { kind: 'conv2d', name, layout, shape, groups, weight: normalArray(size, 1, rng), bias: normalArray(cout, 0.5, rng), padding: 'same' };
}

describe('grouped conv2d geometry agrees with its definition', () => {
  it.each(GEOMETRY)('$layout, groups $groups, $d.kh x $d.kw, $d.cin per group -> $d.cout', ({ layout, d, groups }) => {
    const { shape, coords } = definition(layout, d, groups);
    const layer = grouped(layout, shape, groups);
    expect(kernelDims(layer)).toEqual(d);
    expect(groupsOf(layer)).toBe(groups);
    expect(inputUnits(layer)).toBe(d.cin * groups);
    // The weight writes its cout units exactly as an ungrouped kernel of the same shape.
    const unit = outputUnitOf(layer);
    expect(coords.map((_, x) => unit(x))).toEqual(coords.map((c) => c.unit));
    expect(writeView(layer, d)).toEqual(writeView({ ...layer, groups: 1 }, d));
    // Reader blocks: every element read by exactly its input channel, once.
    const owner = new Array<number>(coords.length).fill(-1);
    for (const b of readBlocks(layer, d)) {
      for (let o = 0; o < b.outer; o++) for (let i = 0; i < b.count; i++) for (let j = 0; j < b.inner; j++) {
        const x = b.start + o * b.outerStride + i * b.inner + j;
        expect(owner[x], `element ${x} read twice`).toBe(-1);
        owner[x] = b.channel + i;
      }
    }
    expect(owner).toEqual(coords.map((c) => c.channel));
  });

  it("'oihw' is one block per group; 'hwio' one per input channel (a group's outputs are a run of opg of cout)", () => {
    const d = { kh: 3, kw: 3, cin: 4, cout: 6 };
    expect(readBlocks(grouped('oihw', [6, 4, 3, 3], 2), d)).toEqual([
      { channel: 0, count: 4, start: 0, outer: 3, outerStride: 36, inner: 9 },
      { channel: 4, count: 4, start: 108, outer: 3, outerStride: 36, inner: 9 },
    ]);
    expect(readBlocks(grouped('hwio', [3, 3, 4, 6], 2), d)).toHaveLength(8);
  });

  it.each(['hwio', 'oihw'] as const)('%s groups 1: the one block is the read view (the plan of an ungrouped conv)', (layout) => {
    const d = { kh: 2, kw: 3, cin: 4, cout: 5 };
    const shape: [number, number, number, number] = layout === 'hwio' ? [2, 3, 4, 5] : [5, 4, 2, 3];
    for (const layer of [grouped(layout, shape, 1), { ...grouped(layout, shape, 1), groups: undefined }]) {
      const t = readView(layer, d);
      expect(readBlocks(layer, d)).toEqual([{ channel: 0, count: 4, start: 0, outer: t.outer, outerStride: t.axis * t.inner, inner: t.inner }]);
    }
  });

  it('the compiled plan: each group of input channels reads only its block, split where a producer segment ends', () => {
    // conv a (4 units) and conv b (2 units), concatenated to 6 channels, read by a 'oihw' conv with groups 3 (2 channels per group).
    const net: Network = [
      { kind: 'input', name: 'x', shape: [3, 4, 4] },
      grouped('oihw', [4, 3, 1, 1], 1, 2, 'a'),
      { kind: 'relu', name: 'ra' },
      grouped('oihw', [2, 3, 1, 1], 1, 3, 'b'),
      { kind: 'concat', name: 'cat', inputs: ['ra', 'b'] },
      grouped('oihw', [3, 2, 3, 3], 3, 4, 'g'),
      { kind: 'relu' },
      grouped('oihw', [2, 3, 1, 1], 1, 5, 'out'),
    ];
    (net[3] as Conv2DLayer).inputs = ['x'];
    const plan = compilePlan(net, { includeBiases: false, residual: 'complete' });
    const reads = (name: string) => plan.groups.find((g) => g.name === name)!.readers.filter((r) => plan.tensors[r.tensor].layer === 'g');
    // Output o of g reads channels 2*o, 2*o + 1: weight row o, 2 channels x 9 taps.
    expect(reads('a')).toEqual([
      { tensor: expect.any(Number), start: 0, outer: 1, outerStride: 18, count: 2, inner: 9, unitStart: 0 },
      { tensor: expect.any(Number), start: 18, outer: 1, outerStride: 18, count: 2, inner: 9, unitStart: 2 },
    ]);
    expect(reads('b')).toEqual([{ tensor: expect.any(Number), start: 36, outer: 1, outerStride: 18, count: 2, inner: 9, unitStart: 0 }]);
  });
});

/** Naive grouped convolution, NHWC input, straight from the definition, 'same' padding with stride 1. */
function naiveGrouped(x: Float32Array, h: number, w: number, layer: Conv2DLayer, d: KernelDims, groups: number): Float64Array {
  const { coords } = definition(layer.layout as ConvLayout, d, groups);
  const c = d.cin * groups;
  const padTop = Math.floor((d.kh - 1) / 2);
  const padLeft = Math.floor((d.kw - 1) / 2);
  const out = new Float64Array(h * w * d.cout);
  for (let y = 0; y < h; y++) for (let xx = 0; xx < w; xx++) {
    for (let o = 0; o < d.cout; o++) out[(y * w + xx) * d.cout + o] = (layer.bias as Float32Array)[o];
    coords.forEach((k, e) => {
      const iy = y + k.ky - padTop;
      const ix = xx + k.kx - padLeft;
      if (iy < 0 || iy >= h || ix < 0 || ix >= w) return;
      out[(y * w + xx) * d.cout + k.unit] += x[(iy * w + ix) * c + k.channel] * layer.weight[e];
    });
  }
  return out;
}

/** tfjs: tf.conv2d of each group's input slice with its [kh, kw, cpg, opg] kernel slice, concatenated on channels. */
function tfjsGrouped(x: Float32Array, h: number, w: number, layer: Conv2DLayer, groups: number, strides: [number, number]): Float32Array {
  const [kh, kw, cpg, cout] = layer.shape;
  const opg = cout / groups;
  return tf.tidy(() => {
    const input = tf.tensor4d(x, [1, h, w, cpg * groups]);
    const kernel = tf.tensor4d(layer.weight, [kh, kw, cpg, cout]);
    const parts = Array.from({ length: groups }, (_, g) => tf.conv2d(
      tf.slice(input, [0, 0, 0, g * cpg], [1, h, w, cpg]), tf.slice(kernel, [0, 0, 0, g * opg], [kh, kw, cpg, opg]), strides, 'same',
    ));
    return tf.add(tf.concat(parts, 3), tf.tensor1d(layer.bias as Float32Array)).dataSync() as Float32Array;
  });
}

/** The 'hwio' kernel [kh, kw, cpg, cout] as 'oihw' [cout, cpg, kh, kw]. */
function toOihw(layer: Conv2DLayer): Conv2DLayer {
  const [kh, kw, cpg, cout] = layer.shape;
  const weight = new Float32Array(layer.weight.length);
  for (let ky = 0; ky < kh; ky++) for (let kx = 0; kx < kw; kx++) for (let i = 0; i < cpg; i++) for (let o = 0; o < cout; o++) {
    weight[((o * cpg + i) * kh + ky) * kw + kx] = layer.weight[((ky * kw + kx) * cpg + i) * cout + o];
  }
  return { ...layer, layout: 'oihw', shape: [cout, cpg, kh, kw], weight };
}

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

/** NCHW [c, h, w] of one example as NHWC. */
function nchwToNhwc(x: ArrayLike<number>, h: number, w: number, c: number): Float64Array {
  const out = new Float64Array(x.length);
  for (let ch = 0; ch < c; ch++) for (let p = 0; p < h * w; p++) out[p * c + ch] = x[ch * h * w + p];
  return out;
}
function nhwcToNchw(x: ArrayLike<number>, h: number, w: number, c: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let ch = 0; ch < c; ch++) for (let p = 0; p < h * w; p++) out[ch * h * w + p] = x[p * c + ch];
  return out;
}

describe('grouped conv2d forward (float64)', () => {
  it.each([
    { groups: 2, kh: 3, kw: 3, cpg: 2, cout: 4 },
    { groups: 3, kh: 3, kw: 2, cpg: 2, cout: 6 },
    { groups: 3, kh: 1, kw: 1, cpg: 1, cout: 6 },
  ])('groups $groups, $kh x $kw, $cpg per group -> $cout: equals the naive grouped conv and tfjs per-group conv2d (1e-5)', ({ groups, kh, kw, cpg, cout }) => {
    const [h, w] = [5, 4];
    const layer = grouped('hwio', [kh, kw, cpg, cout], groups, 7);
    const x = randomInputs([h, w, cpg * groups], 1, 8);
    const [y] = forward([{ kind: 'input', shape: [h, w, cpg * groups] }, layer], [x], { batch: 1 });
    const d = kernelDims(layer);
    expect(maxAbsDiff(y, naiveGrouped(x, h, w, layer, d, groups))).toBeLessThan(1e-12);
    expect(maxAbsDiff(y, tfjsGrouped(x, h, w, layer, groups, [1, 1]))).toBeLessThan(1e-5);
    // 'oihw' on NCHW maps: the same function.
    const [z] = forward([{ kind: 'input', shape: [cpg * groups, h, w] }, toOihw(layer)], [nhwcToNchw(x, h, w, cpg * groups)], { batch: 1 });
    expect(maxAbsDiff(nchwToNhwc(z, h, w, cout), y)).toBeLessThan(1e-12);
  });

  it('strides 2: equals tfjs per-group conv2d', () => {
    const layer = { ...grouped('hwio', [3, 3, 2, 4], 2, 9), strides: 2 } as Conv2DLayer;
    const x = randomInputs([6, 5, 4], 1, 10);
    const [y] = forward([{ kind: 'input', shape: [6, 5, 4] }, layer], [x], { batch: 1 });
    expect(y.length).toBe(3 * 3 * 4);
    expect(maxAbsDiff(y, tfjsGrouped(x, 6, 5, layer, 2, [2, 2]))).toBeLessThan(1e-5);
  });
});

describe('grouped conv2d validation', () => {
  it.each([
    [0, /layer 'g' \(conv2d\): groups must be a positive integer, got 0/],
    [1.5, /groups must be a positive integer, got 1.5/],
    ['2', /groups must be a positive integer, got "2"/],
    [4, /layer 'g' \(conv2d\): 6 output channels are not divisible by groups = 4/],
  ])('groups %s is E_SHAPE naming the layer', (groups, message) => {
    const layer = { ...grouped('hwio', [3, 3, 2, 6], 2), groups } as unknown as Conv2DLayer;
    let error: unknown;
    try {
      validateLayers([{ kind: 'input' }, layer]);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ENormError);
    expect((error as ENormError).code).toBe('E_SHAPE');
    expect((error as Error).message).toMatch(message);
  });

  it('an input whose channel count is not groups x the kernel\'s in axis is E_WIDTH, in the shape pass and in the compiler', () => {
    const layer = grouped('hwio', [3, 3, 2, 6], 3);
    expect(() => forward([{ kind: 'input', shape: [4, 4, 2] }, layer], [new Float32Array(32)], { batch: 1 })).toThrow(/conv2d expects 6 input channels but receives 2/);
    const net: Network = [{ kind: 'input', shape: [4, 4, 3] }, grouped('hwio', [1, 1, 3, 4], 1, 2, 'a'), layer];
    expect(() => compilePlan(net, { includeBiases: false, residual: 'complete' })).toThrow(/layer 'g'.*input channels is 6 but its input 'a' has 4/);
  });
});
