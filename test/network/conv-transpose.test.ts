/**
 * The conv2d-transpose kind: the float64 forward pass against real tfjs (tf.layers.conv2dTranspose),
 * 'iohw' (ONNX / PyTorch) against 'hwoi' (tfjs), the output sizes, and balancing a conv ->
 * conv-transpose -> conv chain: the function is kept and the energy goes down.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { balance } from '../../src/engine/enorm.js';
import { ENormError } from '../../src/errors.js';
import { forward } from '../../src/network/forward.js';
import { forwardShapes } from '../../src/network/forward-shapes.js';
import type { Conv2DTransposeLayer, Layer, Network } from '../../src/network/layers.js';
import { mulberry32, normalArray } from '../../src/network/random.js';
import { validateLayers } from '../../src/network/validate.js';
import { balanceReference } from '../../src/reference/reference.js';
import { cloneNetwork, maxRelDiff, randomInputs, withFloat64Tensors } from '../helpers/nets.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

interface Case { kh: number; kw: number; strides: [number, number]; padding: 'valid' | 'same'; h: number; w: number; cin: number; cout: number }

const CASES: Case[] = [
  { kh: 3, kw: 2, strides: [1, 1], padding: 'valid', h: 4, w: 5, cin: 3, cout: 4 },
  { kh: 3, kw: 2, strides: [1, 1], padding: 'same', h: 4, w: 5, cin: 3, cout: 4 },
  { kh: 3, kw: 3, strides: [2, 2], padding: 'valid', h: 3, w: 4, cin: 2, cout: 5 },
  { kh: 3, kw: 4, strides: [2, 2], padding: 'same', h: 3, w: 4, cin: 2, cout: 5 },
  // a kernel smaller than the stride on one axis ('same': tfjs leaves the gaps at the bias)
  { kh: 1, kw: 3, strides: [2, 2], padding: 'same', h: 3, w: 3, cin: 3, cout: 2 },
  { kh: 2, kw: 3, strides: [2, 1], padding: 'valid', h: 3, w: 4, cin: 3, cout: 3 },
];

const label = (c: Case) => `${c.kh}x${c.kw} stride ${c.strides.join('x')} ${c.padding}`;

function transposeLayer(c: Case, seed: number): Conv2DTransposeLayer {
  const rng = mulberry32(seed);
  return {
    kind: 'conv2d-transpose', name: 'up', layout: 'hwoi', shape: [c.kh, c.kw, c.cout, c.cin],
    weight: normalArray(c.kh * c.kw * c.cout * c.cin, 1, rng), bias: normalArray(c.cout, 1, rng), strides: c.strides, padding: c.padding,
  };
}

/** The same kernel in 'iohw': element (ky, kx, o, i) of [kh, kw, out, in] moves to (i, o, ky, kx) of [in, out, kh, kw]. */
function toIohw(layer: Conv2DTransposeLayer): Conv2DTransposeLayer {
  const [kh, kw, cout, cin] = layer.shape;
  const weight = new Float32Array(layer.weight.length);
  for (let ky = 0; ky < kh; ky++) for (let kx = 0; kx < kw; kx++) for (let o = 0; o < cout; o++) for (let i = 0; i < cin; i++) {
    weight[((i * cout + o) * kh + ky) * kw + kx] = layer.weight[((ky * kw + kx) * cout + o) * cin + i];
  }
  return { ...layer, layout: 'iohw', shape: [cin, cout, kh, kw], weight };
}

/** NHWC [batch, h, w, c] to NCHW [batch, c, h, w]. */
function nhwcToNchw(x: ArrayLike<number>, batch: number, h: number, w: number, c: number): Float64Array {
  const out = new Float64Array(x.length);
  for (let b = 0; b < batch; b++) for (let y = 0; y < h; y++) for (let xx = 0; xx < w; xx++) for (let ch = 0; ch < c; ch++) {
    out[((b * c + ch) * h + y) * w + xx] = x[((b * h + y) * w + xx) * c + ch];
  }
  return out;
}

/** tfjs's Conv2DTranspose on the layer's kernel and bias. */
function tfjsOutput(layer: Conv2DTransposeLayer, c: Case, x: Float32Array, batch: number): { data: Float32Array; shape: number[] } {
  const model = tf.sequential({ layers: [tf.layers.conv2dTranspose({
    inputShape: [c.h, c.w, c.cin], filters: c.cout, kernelSize: [c.kh, c.kw], strides: c.strides, padding: c.padding,
  })] });
  model.setWeights([tf.tensor(layer.weight, layer.shape), tf.tensor(layer.bias as Float32Array, [c.cout])]);
  const y = model.predict(tf.tensor(x, [batch, c.h, c.w, c.cin])) as tf.Tensor;
  return { data: y.dataSync() as Float32Array, shape: y.shape.slice(1) as number[] };
}

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

describe('conv2d-transpose forward', () => {
  it.each(CASES)('$kh x $kw, strides $strides, $padding: equals tfjs Conv2DTranspose (1e-5)', (c) => {
    const layer = transposeLayer(c, 11);
    const batch = 2;
    const x = randomInputs([c.h, c.w, c.cin], batch, 5);
    const expected = tfjsOutput(layer, c, x, batch);
    const net: Network = [{ kind: 'input', shape: [c.h, c.w, c.cin] }, layer];
    const shapes = forwardShapes(net, 'nhwc');
    expect(shapes.shapes[1]).toEqual(expected.shape);
    const [y] = forward(net, [x], { batch });
    expect(y.length).toBe(expected.data.length);
    expect(maxAbsDiff(y, expected.data), label(c)).toBeLessThan(1e-5);
  });

  it.each(CASES)("$kh x $kw, strides $strides, $padding: 'iohw' (NCHW) equals 'hwoi' after permuting the weight", (c) => {
    const layer = transposeLayer(c, 12);
    const batch = 2;
    const x = randomInputs([c.h, c.w, c.cin], batch, 6);
    const [nhwc] = forward([{ kind: 'input', shape: [c.h, c.w, c.cin] }, layer], [x], { batch });
    const [nchw] = forward([{ kind: 'input', shape: [c.cin, c.h, c.w] }, toIohw(layer)], [nhwcToNchw(x, batch, c.h, c.w, c.cin)], { batch });
    const [oh, ow] = forwardShapes([{ kind: 'input', shape: [c.h, c.w, c.cin] }, layer], 'nhwc').shapes[1];
    expect(maxAbsDiff(nchw, nhwcToNchw(nhwc, batch, oh, ow, c.cout))).toBeLessThan(1e-12);
  });

  it("output sizes: 'valid' (H-1)*s + k, 'same' H*s", () => {
    const size = (c: Case) => forwardShapes([{ kind: 'input', shape: [c.h, c.w, c.cin] }, transposeLayer(c, 1)], 'nhwc').shapes[1];
    expect(size({ kh: 3, kw: 2, strides: [2, 3], padding: 'valid', h: 4, w: 5, cin: 1, cout: 2 })).toEqual([9, 14, 2]);
    expect(size({ kh: 3, kw: 2, strides: [2, 3], padding: 'same', h: 4, w: 5, cin: 1, cout: 2 })).toEqual([8, 15, 2]);
    expect(size({ kh: 1, kw: 1, strides: [3, 3], padding: 'valid', h: 4, w: 5, cin: 1, cout: 2 })).toEqual([10, 13, 2]);
  });

  it('rejects a wrong channel count, a wrong bias length and a bad padding, naming the layer', () => {
    const c = CASES[0];
    const wrongChannels: Network = [{ kind: 'input', shape: [c.h, c.w, c.cin + 1] }, transposeLayer(c, 2)];
    expect(() => forward(wrongChannels, [new Float32Array(c.h * c.w * (c.cin + 1))], { batch: 1 })).toThrow(/layer 'up'.*expects 3 input channels but receives 4/);
    const badBias = { ...transposeLayer(c, 2), bias: new Float32Array(c.cout + 1) };
    expect(() => validateLayers([badBias])).toThrow(ENormError);
    const badPadding = { ...transposeLayer(c, 2), padding: 'full' } as unknown as Layer;
    expect(() => validateLayers([badPadding])).toThrow(/padding must be 'same' or 'valid'/);
  });
});

/** conv2d -> relu -> conv2d-transpose (stride 2) -> relu -> conv2d, in one layout; units of very different sizes. */
function chain(layout: 'hwoi' | 'iohw'): { net: Network; shape: number[] } {
  const rng = mulberry32(layout === 'hwoi' ? 21 : 22);
  const spread = (n: number, units: number, unitOf: (x: number) => number) =>
    Float32Array.from({ length: n }, (_, x) => (2 * rng() - 1) * 4 ** ((unitOf(x) % units) / units * 2 - 1));
  const nchw = layout === 'iohw';
  // conv 3x3, 3 -> 4 ('hwio' units on the last axis, 'oihw' on the first); scaled per unit so that balancing moves.
  const conv1: Layer = nchw
    ? { kind: 'conv2d', name: 'c1', layout: 'oihw', shape: [4, 3, 3, 3], weight: spread(108, 4, (x) => Math.floor(x / 27)), bias: normalArray(4, 0.5, rng), padding: 'same' }
    : { kind: 'conv2d', name: 'c1', layout: 'hwio', shape: [3, 3, 3, 4], weight: spread(108, 4, (x) => x % 4), bias: normalArray(4, 0.5, rng), padding: 'same' };
  const hwoi = transposeLayer({ kh: 3, kw: 3, strides: [2, 2], padding: 'same', h: 0, w: 0, cin: 4, cout: 5 }, 23);
  hwoi.weight = spread(180, 5, (x) => Math.floor(x / 4) % 5);
  const up = nchw ? toIohw(hwoi) : hwoi;
  const conv2: Layer = nchw
    ? { kind: 'conv2d', name: 'c2', layout: 'oihw', shape: [2, 5, 1, 1], weight: normalArray(10, 1, rng), padding: 'valid' }
    : { kind: 'conv2d', name: 'c2', layout: 'hwio', shape: [1, 1, 5, 2], weight: normalArray(10, 1, rng), padding: 'valid' };
  const shape = nchw ? [3, 4, 5] : [4, 5, 3];
  return { net: [{ kind: 'input', shape }, conv1, { kind: 'relu' }, up, { kind: 'relu' }, conv2], shape };
}

describe('balancing through a conv2d-transpose', () => {
  it.each(['hwoi', 'iohw'] as const)('%s: conv -> relu -> conv-transpose -> relu -> conv keeps the function and lowers the energy', async (layout) => {
    const { net, shape } = chain(layout);
    const batch = 3;
    const x = randomInputs(shape, batch, 9);
    const before = forward(net, [x], { batch })[0];
    const reference = balanceReference(cloneNetwork(net), { tolerance: 1e-10, maxCycles: 300 });
    // Two groups: the 4 units of c1 and the 5 of the transpose.
    expect(reference.plan.groups.map((g) => g.size)).toEqual([4, 5]);
    const exact = forward(withFloat64Tensors(net, reference.tensors), [x], { batch })[0];
    expect(maxRelDiff(exact, before)).toBeLessThan(1e-5);

    const report = await balance(net, { tolerance: 1e-10, maxCycles: 300 });
    expect(report.energyAfter).toBeLessThan(0.9 * report.energyBefore);
    expect(maxRelDiff(forward(net, [x], { batch })[0], before)).toBeLessThan(1e-5);
  });
});
