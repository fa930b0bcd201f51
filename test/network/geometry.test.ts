import { describe, expect, it } from 'vitest';
import { ENormError } from '../../src/errors.js';
import {
  defaultLayout, inputUnits, kernelDims, kernelShape, layoutActivations, outputUnitOf, outputUnits, readView, toDefaultLayout, writeView,
  type AxisLayout, type KernelDims,
} from '../../src/network/geometry.js';
import { WEIGHT_LAYOUTS, WEIGHTED_KINDS, type Layer, type WeightedKind, type WeightedLayer } from '../../src/network/layers.js';
import { compilePlan } from '../../src/plan/compile.js';
import type { View } from '../../src/plan/ir.js';

/** Where one flat weight element sits: kernel tap (ky, kx), input channel, output unit. */
interface Coord { ky: number; kx: number; cin: number; unit: number }

/**
 * Brute force from the layout definitions in layers.ts, written out independently of geometry.ts:
 * the shape, and every element's coordinate in flat (row-major over the shape) order.
 * Depthwise: channel c, multiplier m, output unit c*M + m; 'oihw' is [C*M, 1, kh, kw].
 * Conv-transpose: tfjs Conv2DTranspose 'hwoi' is [kh, kw, out, in], ONNX ConvTranspose 'iohw' [in, out, kh, kw].
 */
function definition(kind: WeightedKind, layout: string, d: KernelDims): { shape: number[]; coords: Coord[] } {
  const { kh, kw, cin, cout } = d;
  const coords: Coord[] = [];
  const range = (n: number) => Array.from({ length: n }, (_, i) => i);
  const M = cout / cin;
  const key = `${kind}/${layout}`;
  switch (key) {
    case 'dense/io':
      for (const i of range(cin)) for (const o of range(cout)) coords.push({ ky: 0, kx: 0, cin: i, unit: o });
      return { shape: [cin, cout], coords };
    case 'dense/oi':
      for (const o of range(cout)) for (const i of range(cin)) coords.push({ ky: 0, kx: 0, cin: i, unit: o });
      return { shape: [cout, cin], coords };
    case 'conv2d/hwio':
      for (const ky of range(kh)) for (const kx of range(kw)) for (const i of range(cin)) for (const o of range(cout)) coords.push({ ky, kx, cin: i, unit: o });
      return { shape: [kh, kw, cin, cout], coords };
    case 'conv2d/oihw':
      for (const o of range(cout)) for (const i of range(cin)) for (const ky of range(kh)) for (const kx of range(kw)) coords.push({ ky, kx, cin: i, unit: o });
      return { shape: [cout, cin, kh, kw], coords };
    case 'depthwise-conv2d/hwcm':
      for (const ky of range(kh)) for (const kx of range(kw)) for (const c of range(cin)) for (const m of range(M)) coords.push({ ky, kx, cin: c, unit: c * M + m });
      return { shape: [kh, kw, cin, M], coords };
    case 'depthwise-conv2d/oihw':
      for (const o of range(cout)) for (const ky of range(kh)) for (const kx of range(kw)) coords.push({ ky, kx, cin: Math.floor(o / M), unit: o });
      return { shape: [cout, 1, kh, kw], coords };
    case 'conv2d-transpose/hwoi':
      for (const ky of range(kh)) for (const kx of range(kw)) for (const o of range(cout)) for (const i of range(cin)) coords.push({ ky, kx, cin: i, unit: o });
      return { shape: [kh, kw, cout, cin], coords };
    case 'conv2d-transpose/iohw':
      for (const i of range(cin)) for (const o of range(cout)) for (const ky of range(kh)) for (const kx of range(kw)) coords.push({ ky, kx, cin: i, unit: o });
      return { shape: [cin, cout, kh, kw], coords };
    default:
      throw new Error(`no definition for ${key}: add one here`);
  }
}

const DIMS: Record<WeightedKind, KernelDims> = {
  dense: { kh: 1, kw: 1, cin: 4, cout: 5 },
  conv2d: { kh: 2, kw: 3, cin: 4, cout: 5 },
  'depthwise-conv2d': { kh: 3, kw: 2, cin: 3, cout: 6 },
  'conv2d-transpose': { kh: 3, kw: 2, cin: 4, cout: 5 },
};

const CASES = WEIGHTED_KINDS.flatMap((kind) => WEIGHT_LAYOUTS[kind].map((layout) => ({ kind, layout })));

function layerOf(kind: WeightedKind, layout: string, shape: number[]): WeightedLayer {
  const size = shape.reduce((a, b) => a * b, 1);
  return { kind, layout, shape, weight: Float32Array.from({ length: size }, (_, i) => i + 1) } as unknown as WeightedLayer;
}

/** For every index of the middle axis, the flat elements it owns: (o*axis + a)*inner + i. */
function owners(v: AxisLayout, size: number): number[] {
  expect(v.outer * v.axis * v.inner).toBe(size);
  const owner = new Array<number>(size).fill(-1);
  for (let o = 0; o < v.outer; o++) {
    for (let a = 0; a < v.axis; a++) {
      for (let i = 0; i < v.inner; i++) {
        const x = (o * v.axis + a) * v.inner + i;
        expect(owner[x], `element ${x} owned twice`).toBe(-1);
        owner[x] = a;
      }
    }
  }
  expect(owner.includes(-1)).toBe(false);
  return owner;
}

describe('geometry: every weighted kind x layout agrees with its definition', () => {
  it('covers every kind and layout', () => {
    expect(CASES.map((c) => `${c.kind}/${c.layout}`)).toEqual([
      'dense/io', 'dense/oi', 'conv2d/hwio', 'conv2d/oihw', 'depthwise-conv2d/hwcm', 'depthwise-conv2d/oihw',
      'conv2d-transpose/hwoi', 'conv2d-transpose/iohw',
    ]);
  });

  it.each(CASES)('$kind $layout: shape, units, unit of every element', ({ kind, layout }) => {
    const d = DIMS[kind];
    const { shape, coords } = definition(kind, layout, d);
    expect(kernelShape(kind, layout as never, d)).toEqual(shape);
    const layer = layerOf(kind, layout, shape);
    expect(kernelDims(layer, d.cin)).toEqual(d);
    expect(outputUnits(layer)).toBe(d.cout);
    expect(inputUnits(layer, d.cin)).toBe(d.cin);
    const unit = outputUnitOf(layer);
    expect(coords.map((_, x) => unit(x))).toEqual(coords.map((c) => c.unit));
  });

  it.each(CASES)('$kind $layout: the write view gives every element to its output unit, once', ({ kind, layout }) => {
    const d = DIMS[kind];
    const { shape, coords } = definition(kind, layout, d);
    const owner = owners(writeView(layerOf(kind, layout, shape), d), coords.length);
    expect(owner).toEqual(coords.map((c) => c.unit));
  });

  it.each(CASES)('$kind $layout: the read view gives every element to its input channel, once', ({ kind, layout }) => {
    const d = DIMS[kind];
    const { shape, coords } = definition(kind, layout, d);
    const owner = owners(readView(layerOf(kind, layout, shape), d), coords.length);
    expect(owner).toEqual(coords.map((c) => c.cin));
  });

  it.each(CASES)('$kind $layout: toDefaultLayout moves every element to its place in the default layout', ({ kind, layout }) => {
    const d = DIMS[kind];
    const { shape, coords } = definition(kind, layout, d);
    const layer = layerOf(kind, layout, shape);
    const target = definition(kind, defaultLayout(kind), d).coords;
    const at = new Map(target.map((c, x) => [`${c.ky},${c.kx},${c.cin},${c.unit}`, x]));
    const moved = toDefaultLayout(layer, d);
    coords.forEach((c, x) => expect(moved[at.get(`${c.ky},${c.kx},${c.cin},${c.unit}`) as number]).toBe(layer.weight[x]));
  });

  it.each([
    { layout: 'io', order: 'channels-last' },
    { layout: 'io', order: 'channels-first' },
    { layout: 'oi', order: 'channels-last' },
    { layout: 'oi', order: 'channels-first' },
  ] as const)('dense $layout behind a $order Flatten: rows grouped by the channel they came from', ({ layout, order }) => {
    const channels = 3;
    const positions = 4;
    const d: KernelDims = { kh: 1, kw: 1, cin: channels * positions, cout: 2 };
    const { shape, coords } = definition('dense', layout, d);
    // (h, w, c) flattening puts channel c at rows p*C + c; (c, h, w) at rows c*P + p.
    const channelOfRow = (r: number) => (order === 'channels-last' ? r % channels : Math.floor(r / positions));
    const owner = owners(readView(layerOf('dense', layout, shape), d, { positions, order }), coords.length);
    expect(owner).toEqual(coords.map((c) => channelOfRow(c.cin)));
  });

  it('a layout of another kind is E_LAYOUT', () => {
    const layer = { kind: 'dense', layout: 'hwio', shape: [2, 2], weight: new Float32Array(4) } as unknown as WeightedLayer;
    expect(() => outputUnits(layer)).toThrow(ENormError);
    expect(() => outputUnits(layer)).toThrow(/layout 'hwio' is not one of io, oi/);
  });
});

/** The flat elements of tensor `t` that a plan view hands to each unit: start + o*outerStride + i*inner + j. */
function planOwners(views: { view: View; group: number }[], size: number): string[] {
  const owner = new Array<string>(size).fill('');
  for (const { view: v, group } of views) {
    for (let o = 0; o < v.outer; o++) {
      for (let i = 0; i < v.count; i++) {
        for (let j = 0; j < v.inner; j++) {
          const x = v.start + o * v.outerStride + i * v.inner + j;
          expect(owner[x], `element ${x} in two views`).toBe('');
          owner[x] = `${group}:${v.unitStart + i}`;
        }
      }
    }
  }
  return owner;
}

describe('geometry in the compiled plan', () => {
  const f32 = (n: number) => Float32Array.from({ length: n }, (_, i) => 0.5 + (i % 7) / 10);
  /** conv (writer) -> relu -> kind under test (reader and writer) -> relu -> conv 1x1 (reader). */
  const nets: { name: string; net: Layer[] }[] = CASES.filter((c) => c.kind !== 'dense').map(({ kind, layout }) => {
    const nchw = layoutActivations(kind, layout as never) === 'nchw';
    const d = DIMS[kind];
    const conv = (name: string, k: number, cin: number, cout: number): Layer => ({
      kind: 'conv2d', name, layout: nchw ? 'oihw' : 'hwio', weight: f32(k * k * cin * cout), padding: 'same',
      shape: nchw ? [cout, cin, k, k] : [k, k, cin, cout],
    });
    const mid = { kind, name: 'mid', layout, shape: definition(kind, layout, d).shape, weight: f32(definition(kind, layout, d).coords.length), padding: 'same' } as unknown as Layer;
    return {
      name: `${kind}/${layout}`,
      net: [conv('first', 1, 2, d.cin), { kind: 'relu' }, mid, { kind: 'relu' }, conv('last', 1, d.cout, 2)],
    };
  });

  it.each(nets)('$name: its kernel is written once per output unit and read once per input channel', ({ net }) => {
    const plan = compilePlan(net, { includeBiases: false, residual: 'complete' });
    const mid = plan.tensors.findIndex((t) => t.layer === 'mid' && t.role === 'weight');
    const size = plan.tensors[mid].data.length;
    const writers = plan.groups.flatMap((g) => g.writers.filter((w) => w.tensor === mid).map((view) => ({ view, group: g.id })));
    const readers = plan.groups.flatMap((g) => g.readers.filter((r) => r.tensor === mid).map((view) => ({ view, group: g.id })));
    const layer = net[2] as WeightedLayer;
    const { coords } = definition(layer.kind, layer.layout as string, DIMS[layer.kind]);
    const written = planOwners(writers, size);
    const read = planOwners(readers, size);
    expect(writers).toHaveLength(1);
    expect(readers).toHaveLength(1);
    expect(written).toEqual(coords.map((c) => `${writers[0].group}:${c.unit}`));
    expect(read).toEqual(coords.map((c) => `${readers[0].group}:${c.cin}`));
  });
});
