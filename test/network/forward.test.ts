import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { ENormError } from '../../src/errors.js';
import { erf, forward } from '../../src/network/forward.js';
import { forwardShapes } from '../../src/network/forward-shapes.js';
import type { Layer, Network } from '../../src/network/layers.js';
import { mulberry32 } from '../../src/network/random.js';
import { throwsENormError } from '../helpers/errors.js';

// ---------------------------------------------------------------------------------------------
// Seeded randomness


/** n uniform values in [-scale, scale). */
function uniform(n: number, rng: () => number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (2 * rng() - 1) * scale;
  return out;
}

// ---------------------------------------------------------------------------------------------
// tfjs -> enorm network (test-only converter, NHWC / 'io' / 'hwio' / 'hwcm')

type SymT = tf.SymbolicTensor;
const apply = (layer: tf.layers.Layer, x: SymT | SymT[]): SymT => layer.apply(x) as SymT;

/** Replaces every weight of `model` with seeded random values (positive moving variances). */
function randomize(model: tf.LayersModel, seed: number): void {
  const rng = mulberry32(seed);
  for (const layer of model.layers) {
    const ws = layer.weights;
    if (ws.length === 0) continue;
    layer.setWeights(ws.map((v) => {
      const size = v.shape.reduce<number>((a, b) => a * (b ?? 1), 1);
      const fanIn = v.shape.length > 1 ? size / (v.shape[v.shape.length - 1] as number) : 1;
      let vals = uniform(size, rng, Math.sqrt(3 / fanIn));
      if (v.originalName.includes('moving_variance')) vals = vals.map((x) => 0.2 + Math.abs(x));
      if (v.originalName.includes('gamma')) vals = vals.map((x) => 0.5 + x);
      return tf.tensor(vals, v.shape as number[]);
    }));
  }
}

function weightsOf(layer: tf.layers.Layer): Float32Array[] {
  return layer.getWeights().map((t) => t.dataSync() as Float32Array);
}

/** Shapes [h, w, c] of the maps that reach each flatten, for the NCHW transforms below. */
type FlattenShapes = Map<string, [number, number, number]>;

function fromTf(model: tf.LayersModel): { net: Network; flattenShapes: FlattenShapes } {
  const net: Layer[] = [];
  const out = new Map<string, string>(); // tf layer name -> name of the enorm layer holding its output
  const flattenShapes: FlattenShapes = new Map();
  for (const layer of model.layers) {
    const cls = layer.getClassName();
    const cfg = layer.getConfig() as Record<string, unknown>;
    const name = layer.name;
    const inputs = (layer.inboundNodes[0]?.inboundLayers ?? []).map((l) => out.get(l.name) as string);
    const w = weightsOf(layer);
    const base = { name, inputs: cls === 'InputLayer' ? undefined : inputs };
    let last = name;
    const withActivation = (): void => {
      const act = cfg.activation as string | undefined;
      if (act === undefined || act === 'linear') return;
      last = `${name}/act`;
      net.push(act === 'relu' ? { kind: 'relu', name: last } : { kind: 'activation', name: last, fn: act as 'tanh' });
    };
    const strides = cfg.strides as [number, number];
    const padding = cfg.padding as 'same' | 'valid';
    const kshape = (i: number) => layer.weights[i].shape as number[];
    switch (cls) {
      case 'InputLayer':
        net.push({ kind: 'input', name, shape: (cfg.batchInputShape as number[]).slice(1) });
        break;
      case 'Dense':
        net.push({ ...base, kind: 'dense', weight: w[0], shape: kshape(0) as [number, number], bias: w[1] });
        withActivation();
        break;
      case 'Conv2D':
        net.push({ ...base, kind: 'conv2d', weight: w[0], shape: kshape(0) as [number, number, number, number], bias: w[1], strides, padding });
        withActivation();
        break;
      case 'DepthwiseConv2D':
        net.push({ ...base, kind: 'depthwise-conv2d', weight: w[0], shape: kshape(0) as [number, number, number, number], bias: w[1], strides, padding });
        withActivation();
        break;
      case 'SeparableConv2D': {
        const dw = kshape(0) as [number, number, number, number];
        net.push({ ...base, name: `${name}/depthwise`, kind: 'depthwise-conv2d', weight: w[0], shape: dw, strides, padding });
        net.push({ name, inputs: [`${name}/depthwise`], kind: 'conv2d', weight: w[1], shape: kshape(1) as [number, number, number, number], bias: w[2] });
        withActivation();
        break;
      }
      case 'BatchNormalization':
        net.push({ ...base, kind: 'batch-norm', gamma: w[0], beta: w[1], mean: w[2], variance: w[3], epsilon: cfg.epsilon as number });
        break;
      case 'Activation':
        withActivation();
        if (last === name) net.push({ ...base, kind: 'identity' });
        else net[net.length - 1].inputs = inputs;
        last = net[net.length - 1].name as string;
        break;
      case 'LeakyReLU':
        net.push({ ...base, kind: 'leaky-relu', alpha: cfg.alpha as number });
        break;
      case 'MaxPooling2D':
      case 'AveragePooling2D':
        net.push({ ...base, kind: cls === 'MaxPooling2D' ? 'max-pool' : 'avg-pool', size: cfg.poolSize as [number, number], strides, padding });
        break;
      case 'GlobalAveragePooling2D':
        net.push({ ...base, kind: 'global-avg-pool' });
        break;
      case 'GlobalMaxPooling2D':
        net.push({ ...base, kind: 'global-max-pool' });
        break;
      case 'Flatten':
        net.push({ ...base, kind: 'flatten' });
        flattenShapes.set(name, (layer.inboundNodes[0].inboundLayers[0].outputShape as number[]).slice(1) as [number, number, number]);
        break;
      case 'Dropout':
        net.push({ ...base, kind: 'dropout', rate: cfg.rate as number });
        break;
      case 'Add':
        net.push({ name, inputs, kind: 'add' });
        break;
      case 'Concatenate':
        net.push({ name, inputs, kind: 'concat' });
        break;
      default:
        throw new Error(`test converter: unsupported tfjs layer ${cls}`);
    }
    out.set(name, last);
  }
  return { net, flattenShapes };
}

// ---------------------------------------------------------------------------------------------
// PyTorch layouts: 'oi' / 'oihw' kernels, NCHW activations

function nhwcToNchw(a: ArrayLike<number>, batch: number, [h, w, c]: number[]): Float64Array {
  const out = new Float64Array(a.length);
  for (let b = 0; b < batch; b++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        for (let ch = 0; ch < c; ch++) out[((b * c + ch) * h + y) * w + x] = a[((b * h + y) * w + x) * c + ch];
      }
    }
  }
  return out;
}

/**
 * The same network in PyTorch layouts. With `channelsFirst`, flattens become 'channels-first'
 * and the rows of the dense layer after each one are permuted to match; otherwise flattens keep
 * 'channels-last' and weights are only transposed. Both must compute the same function.
 */
function toPyTorch(net: Network, flattenShapes: FlattenShapes, channelsFirst: boolean): Network {
  const permuteNext = new Map<string, [number, number, number]>();
  return net.map((layer): Layer => {
    switch (layer.kind) {
      case 'dense': {
        const [nIn, nOut] = layer.shape;
        const src = layer.inputs?.[0];
        const perm = src !== undefined ? permuteNext.get(src) : undefined;
        const weight = new Float32Array(nIn * nOut);
        for (let i = 0; i < nIn; i++) {
          // Row i of the 'io' weight reads channels-last feature i; find its channels-first position.
          let col = i;
          if (perm !== undefined) {
            const [h, w, c] = perm;
            const ch = i % c;
            const x = Math.floor(i / c) % w;
            const y = Math.floor(i / (c * w));
            col = (ch * h + y) * w + x;
          }
          for (let o = 0; o < nOut; o++) weight[o * nIn + col] = layer.weight[i * nOut + o];
        }
        return { ...layer, layout: 'oi', shape: [nOut, nIn], weight };
      }
      case 'conv2d': {
        const [kh, kw, ci, co] = layer.shape;
        return { ...layer, layout: 'oihw', shape: [co, ci, kh, kw], weight: hwioToOihw(layer.weight, kh, kw, ci, co) };
      }
      case 'depthwise-conv2d': {
        const [kh, kw, c, m] = layer.shape;
        // HWCM element (y, x, c, m) sits where HWIO with I = 1, O = C*M puts output channel c*M + m.
        return { ...layer, layout: 'oihw', shape: [c * m, 1, kh, kw], weight: hwioToOihw(layer.weight, kh, kw, 1, c * m) };
      }
      case 'input': {
        const s = layer.shape as number[];
        return s.length === 3 ? { ...layer, shape: [s[2], s[0], s[1]] } : layer;
      }
      case 'flatten': {
        if (!channelsFirst) return { ...layer, order: 'channels-last' };
        permuteNext.set(layer.name as string, flattenShapes.get(layer.name as string) as [number, number, number]);
        return { ...layer, order: 'channels-first' };
      }
      case 'dropout':
      case 'identity': {
        // Elementwise: the dense after it still needs the flatten's permutation.
        const perm = permuteNext.get(layer.inputs?.[0] ?? '');
        if (perm !== undefined) permuteNext.set(layer.name as string, perm);
        return layer;
      }
      default:
        return layer;
    }
  });
}

function hwioToOihw(a: Float32Array, kh: number, kw: number, ci: number, co: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let y = 0; y < kh; y++) {
    for (let x = 0; x < kw; x++) {
      for (let i = 0; i < ci; i++) {
        for (let o = 0; o < co; o++) out[((o * ci + i) * kh + y) * kw + x] = a[((y * kw + x) * ci + i) * co + o];
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Comparison

/** Norm-wise relative closeness: max |a - b| <= rtol * max |b| (tfjs computes in float32). */
function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol = 1e-5): void {
  expect(actual.length).toBe(expected.length);
  let err = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    err = Math.max(err, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  expect(Number.isFinite(err)).toBe(true);
  expect(err).toBeLessThanOrEqual(rtol * Math.max(scale, 1e-3));
}

/** Runs `model` in tfjs and in `forward` on the same seeded inputs; compares every output. */
function checkAgainstTf(model: tf.LayersModel, seed: number, batch = 3, pytorch = true): void {
  randomize(model, seed);
  const rng = mulberry32(seed + 1000);
  const shapes = model.inputs.map((t) => t.shape.slice(1) as number[]);
  const inputs = shapes.map((s) => uniform(batch * s.reduce((a, b) => a * b, 1), rng, 2));
  const pred = model.predict(inputs.map((x, i) => tf.tensor(x, [batch, ...shapes[i]])));
  const outs = (Array.isArray(pred) ? pred : [pred]).map((t) => t.dataSync() as Float32Array);
  const outShapes = model.outputs.map((t) => t.shape.slice(1) as number[]);

  const { net, flattenShapes } = fromTf(model);
  const got = forward(net, inputs, { batch });
  expect(got.length).toBe(outs.length);
  got.forEach((g, i) => expectClose(g, outs[i]));

  if (!pytorch) return;
  const nchwInputs = inputs.map((x, i) => (shapes[i].length === 3 ? nhwcToNchw(x, batch, shapes[i]) : x));
  const nchwOuts = outs.map((o, i) => (outShapes[i].length === 3 ? nhwcToNchw(o, batch, outShapes[i]) : o));
  for (const channelsFirst of [false, true]) {
    const torchNet = toPyTorch(net, flattenShapes, channelsFirst);
    const torchGot = forward(torchNet, nchwInputs, { batch });
    torchGot.forEach((g, i) => expectClose(g, nchwOuts[i]));
  }
}

/** A one-input functional model: `body` maps the input to its output(s). */
function model(shape: number[], body: (x: SymT) => SymT | SymT[]): tf.LayersModel {
  const input = tf.input({ shape });
  return tf.model({ inputs: input, outputs: body(input) });
}

const L = tf.layers;

beforeAll(async () => {
  await tf.setBackend('cpu');
  await tf.ready();
});

// ---------------------------------------------------------------------------------------------

describe('forward matches tfjs (NHWC, io/hwio/hwcm) and the PyTorch layouts (NCHW, oi/oihw)', () => {
  it('dense with bias and relu / linear / tanh / sigmoid / softmax', () => {
    checkAgainstTf(model([7], (x) => {
      let h = apply(L.dense({ units: 9, activation: 'relu' }), x);
      h = apply(L.dense({ units: 8 }), h);
      h = apply(L.dense({ units: 6, activation: 'tanh' }), h);
      h = apply(L.dense({ units: 5, activation: 'sigmoid' }), h);
      return apply(L.dense({ units: 4, activation: 'softmax' }), h);
    }), 1);
  });

  it('barrier activations: elu, selu, softplus, relu6, swish, gelu (exact erf form)', () => {
    for (const act of ['elu', 'selu', 'softplus', 'relu6', 'swish', 'gelu'] as const) {
      checkAgainstTf(model([6], (x) => {
        const h = apply(L.dense({ units: 10 }), x);
        return apply(L.dense({ units: 3 }), apply(L.activation({ activation: act }), h));
      }), 2);
    }
  });

  it('leaky relu with alpha 0.3 and 0.1', () => {
    checkAgainstTf(model([5], (x) => {
      const h = apply(L.leakyReLU({ alpha: 0.3 }), apply(L.dense({ units: 8 }), x));
      return apply(L.leakyReLU({ alpha: 0.1 }), apply(L.dense({ units: 4 }), h));
    }), 3);
  });

  it('conv2d valid / same, strides 1 and 2, odd and even sizes and kernels, then flatten -> dense', () => {
    const cases: [number[], number, number, 'valid' | 'same'][] = [
      [[9, 9, 3], 3, 1, 'valid'], [[9, 9, 3], 3, 1, 'same'], [[9, 8, 3], 3, 2, 'valid'], [[9, 8, 3], 3, 2, 'same'],
      [[8, 8, 2], 2, 2, 'same'], [[8, 7, 2], 4, 1, 'same'], [[10, 10, 2], 4, 2, 'same'], [[7, 10, 2], 2, 3, 'valid'],
    ];
    cases.forEach(([shape, k, s, padding], i) => {
      checkAgainstTf(model(shape, (x) => {
        const h = apply(L.conv2d({ filters: 5, kernelSize: k, strides: s, padding, activation: 'relu' }), x);
        const g = apply(L.conv2d({ filters: 4, kernelSize: [k, 1], strides: [s, 1], padding }), h);
        return apply(L.dense({ units: 3 }), apply(L.flatten(), g));
      }), 10 + i);
    });
  });

  it('conv2d output maps come back NHWC (and NCHW in the PyTorch layout)', () => {
    checkAgainstTf(model([6, 5, 3], (x) => apply(L.conv2d({ filters: 4, kernelSize: 3, padding: 'same', strides: [2, 1] }), x)), 20);
  });

  it('depthwise conv with multiplier 1 and 2, valid and same, strides 1 and 2', () => {
    const cases: [number, number, 'valid' | 'same'][] = [[1, 1, 'valid'], [2, 1, 'same'], [1, 2, 'same'], [2, 2, 'valid']];
    cases.forEach(([m, s, padding], i) => {
      checkAgainstTf(model([8, 7, 3], (x) => {
        const h = apply(L.depthwiseConv2d({ kernelSize: 3, depthMultiplier: m, strides: s, padding, activation: 'relu' }), x);
        return apply(L.dense({ units: 4 }), apply(L.flatten(), h));
      }), 30 + i);
    });
  });

  it('separable conv as depthwise + 1x1 conv', () => {
    checkAgainstTf(model([8, 8, 3], (x) => {
      const h = apply(L.separableConv2d({ filters: 6, kernelSize: 3, depthMultiplier: 2, padding: 'same', activation: 'relu' }), x);
      return apply(L.separableConv2d({ filters: 4, kernelSize: 3, strides: 2 }), h);
    }), 40);
  });

  it('batch norm with non-trivial moving statistics, on maps and on vectors', () => {
    checkAgainstTf(model([6, 6, 3], (x) => {
      let h = apply(L.conv2d({ filters: 5, kernelSize: 3, useBias: false }), x);
      h = apply(L.activation({ activation: 'relu' }), apply(L.batchNormalization({ epsilon: 1e-3 }), h));
      h = apply(L.dense({ units: 6 }), apply(L.flatten(), h));
      return apply(L.batchNormalization({ epsilon: 1e-5 }), h);
    }), 50);
  });

  it('max and average pooling, valid and same, with strides', () => {
    const cases: [number, number | undefined, 'valid' | 'same'][] = [
      [2, undefined, 'valid'], [3, 2, 'valid'], [2, 1, 'same'], [3, 2, 'same'], [3, undefined, 'same'], [2, 3, 'same'],
    ];
    cases.forEach(([size, strides, padding], i) => {
      for (const Pool of [L.maxPooling2d, L.averagePooling2d]) {
        checkAgainstTf(model([7, 8, 3], (x) => {
          const h = apply(L.conv2d({ filters: 4, kernelSize: 1 }), x);
          return apply(Pool({ poolSize: size, strides, padding }), h);
        }), 60 + i);
      }
    });
  });

  it('global average and max pooling', () => {
    checkAgainstTf(model([5, 6, 3], (x) => {
      const h = apply(L.conv2d({ filters: 4, kernelSize: 3, activation: 'relu' }), x);
      const a = apply(L.globalAveragePooling2d({}), h);
      const m = apply(L.globalMaxPooling2d({}), h);
      return [apply(L.dense({ units: 2 }), a), apply(L.dense({ units: 2 }), m)];
    }), 70);
  });

  it('a functional model with add (residual), concatenate of maps and of vectors, dropout', () => {
    checkAgainstTf(model([8, 8, 3], (x) => {
      const stem = apply(L.conv2d({ filters: 6, kernelSize: 3, padding: 'same', activation: 'relu' }), x);
      let r = apply(L.conv2d({ filters: 6, kernelSize: 3, padding: 'same', useBias: false }), stem);
      r = apply(L.batchNormalization({}), r);
      const sum = apply(L.activation({ activation: 'relu' }), apply(L.add(), [stem, r]));
      const down = apply(L.conv2d({ filters: 4, kernelSize: 3, strides: 2, padding: 'same' }), sum);
      const proj = apply(L.conv2d({ filters: 4, kernelSize: 1, strides: 2 }), sum);
      const res = apply(L.add(), [down, proj]);
      const cat = apply(L.concatenate(), [res, apply(L.maxPooling2d({ poolSize: 2 }), sum)]);
      const f = apply(L.dropout({ rate: 0.5 }), apply(L.flatten(), cat));
      const v1 = apply(L.dense({ units: 5, activation: 'relu' }), f);
      const v2 = apply(L.dense({ units: 3 }), f);
      return apply(L.dense({ units: 4 }), apply(L.concatenate(), [v1, v2]));
    }), 80);
  });

  it('two inputs and two outputs, in order', () => {
    const a = tf.input({ shape: [4] });
    const b = tf.input({ shape: [3] });
    const cat = apply(L.concatenate(), [apply(L.dense({ units: 5 }), a), apply(L.dense({ units: 5 }), b)]);
    const o1 = apply(L.dense({ units: 2 }), cat);
    const o2 = apply(L.dense({ units: 3, activation: 'softmax' }), cat);
    checkAgainstTf(tf.model({ inputs: [a, b], outputs: [o1, o2] }), 90);
  });
});

describe('forward: layouts and inputs', () => {
  it('channels-first flatten in NCHW equals channels-last in NHWC with permuted dense rows (hand-built)', () => {
    // NHWC conv(2x2 map, 2 channels) -> flatten -> dense(1) = sum_i v_i * w_i
    const eye = new Float32Array([1, 0, 0, 1]);
    const x = [1, 2, 3, 4, 5, 6, 7, 8]; // NHWC [2, 2, 2]
    const wNhwc = new Float32Array([1, 10, 100, 1000, 1e4, 1e5, 1e6, 1e7]);
    const nhwc: Network = [
      { kind: 'input', shape: [2, 2, 2] }, { kind: 'conv2d', weight: eye, shape: [1, 1, 2, 2], layout: 'hwio' }, { kind: 'flatten' },
      { kind: 'dense', weight: wNhwc, shape: [8, 1] },
    ];
    const [ref] = forward(nhwc, [x], { batch: 1 });
    expect(ref[0]).toBe(87654321);
    const xNchw = [1, 3, 5, 7, 2, 4, 6, 8];
    const wCf = new Float32Array([1, 100, 1e4, 1e6, 10, 1000, 1e5, 1e7]); // (c, h, w) order
    const nchw: Network = [
      { kind: 'input', shape: [2, 2, 2] }, { kind: 'conv2d', weight: eye, shape: [2, 2, 1, 1], layout: 'oihw' }, { kind: 'flatten', order: 'channels-first' },
      { kind: 'dense', weight: wCf, shape: [1, 8], layout: 'oi' },
    ];
    expect(forward(nchw, [xNchw], { batch: 1 })[0][0]).toBe(87654321);
    nchw[2] = { kind: 'flatten', order: 'channels-last' };
    nchw[3] = { kind: 'dense', weight: wNhwc, shape: [1, 8], layout: 'oi' };
    expect(forward(nchw, [xNchw], { batch: 1 })[0][0]).toBe(87654321);
  });

  it('an implicit input is a vector as wide as the first dense layer; inputShapes overrides shapes', () => {
    const net: Network = [
      { kind: 'dense', weight: new Float32Array([1, 2, 3, 4, 5, 6]), shape: [3, 2] },
      { kind: 'relu' },
    ];
    const out = forward(net, [[1, 0, -1, 0, 0, 1]], { batch: 2 });
    expect([...out[0]]).toEqual([0, 0, 5, 6]);
    expect([...forward(net, [[1, 0, -1, 0, 0, 1]], { batch: 2, inputShapes: [[3]] })[0]]).toEqual([0, 0, 5, 6]);
    const conv: Network = [{ kind: 'conv2d', weight: new Float32Array([2]), shape: [1, 1, 1, 1] }, { kind: 'global-avg-pool' }];
    expect([...forward(conv, [[1, 2, 3, 4]], { batch: 1, inputShapes: [[2, 2, 1]] })[0]]).toEqual([5]);
    expect(() => forward(conv, [[1, 2, 3, 4]], { batch: 1 })).toThrow(ENormError);
  });

  it('batch-norm defaults (gamma 1, beta 0, epsilon 1e-3) and activation defaults', () => {
    const net: Network = [
      { kind: 'input', shape: [2] },
      { kind: 'batch-norm', mean: new Float32Array([1, -1]), variance: new Float32Array([3.999, 0.999]) },
      { kind: 'leaky-relu' },
    ];
    const [y] = forward(net, [[3, -3]], { batch: 1 });
    // (3.999 and 0.999 are not exact in float32; without the 1e-3 epsilon y[0] would be off by 1e-4)
    expect(y[0]).toBeCloseTo(1, 6);
    expect(y[1]).toBeCloseTo(-0.6, 6);
  });

  it('gelu is the exact erf form', () => {
    expect(erf(1)).toBeCloseTo(0.8427007929497149, 15);
    expect(erf(-2)).toBeCloseTo(-0.9953222650189527, 15);
    const [y] = forward([{ kind: 'input', shape: [2] }, { kind: 'activation', fn: 'gelu' }], [[1, -1]], { batch: 1 });
    expect(y[0]).toBeCloseTo(0.8413447460685429, 14);
    expect(y[1]).toBeCloseTo(-0.15865525393145707, 14);
  });

  it('does not mutate weights or inputs, and outputs do not alias each other', () => {
    const w = new Float32Array([1, -2, 3, -4]);
    const x = new Float32Array([0.5, -0.5]);
    const net: Network = [
      { kind: 'input', name: 'x', shape: [2] },
      { kind: 'dense', name: 'd', weight: w, shape: [2, 2] },
      { kind: 'identity', name: 'a', inputs: ['d'] },
      { kind: 'dropout', name: 'b', inputs: ['d'] },
    ];
    const [a, b] = forward(net, [x], { batch: 1 });
    a[0] = 99;
    expect(b[0]).not.toBe(99);
    expect([...w]).toEqual([1, -2, 3, -4]);
    expect([...x]).toEqual([0.5, -0.5]);
  });
});

describe('forward: errors', () => {
  const catchIt = throwsENormError;

  it('mixed convolution layouts -> E_LAYOUT naming the layer', () => {
    const net: Network = [
      { kind: 'input', shape: [4, 4, 1] },
      { kind: 'conv2d', name: 'c1', weight: new Float32Array(9), shape: [3, 3, 1, 1], layout: 'hwio' },
      { kind: 'depthwise-conv2d', name: 'dw', weight: new Float32Array(1), shape: [1, 1, 1, 1], layout: 'oihw' },
    ];
    const e = catchIt(() => forward(net, [new Float32Array(16)], { batch: 1 }));
    expect(e.code).toBe('E_LAYOUT');
    expect(e.message).toContain("'dw'");
    expect(e.message).toContain("'c1'");
    expect(e.details.layer).toBe('dw');
  });

  it('dense width mismatch -> E_WIDTH naming the layer', () => {
    const net: Network = [
      { kind: 'input', shape: [3] },
      { kind: 'dense', name: 'fc1', weight: new Float32Array(12), shape: [3, 4] },
      { kind: 'dense', name: 'fc2', weight: new Float32Array(10), shape: [5, 2] },
    ];
    const e = catchIt(() => forward(net, [new Float32Array(3)], { batch: 1 }));
    expect(e.code).toBe('E_WIDTH');
    expect(e.message).toContain("'fc2'");
    expect(e.details.layerIndex).toBe(2);
    const unnamed = net.map(({ name: _n, ...l }) => l as Layer);
    expect(catchIt(() => forward(unnamed, [new Float32Array(3)], { batch: 1 })).message).toContain("'#2'");
  });

  it('add of mismatching shapes -> E_WIDTH naming the layer', () => {
    const net: Network = [
      { kind: 'input', name: 'x', shape: [3] },
      { kind: 'dense', name: 'a', inputs: ['x'], weight: new Float32Array(12), shape: [3, 4] },
      { kind: 'dense', name: 'b', inputs: ['x'], weight: new Float32Array(15), shape: [3, 5] },
      { kind: 'add', name: 'sum', inputs: ['a', 'b'] },
    ];
    const e = catchIt(() => forward(net, [new Float32Array(3)], { batch: 1 }));
    expect(e.code).toBe('E_WIDTH');
    expect(e.message).toContain("'sum'");
  });

  it('other shape inconsistencies: conv channels, dense on a map, concat of maps of different sizes, input length', () => {
    const map: Layer = { kind: 'input', name: 'x', shape: [4, 4, 2] };
    const conv = (name: string, cin: number, k = 1, strides = 1): Layer =>
      ({ kind: 'conv2d', name, inputs: ['x'], weight: new Float32Array(k * k * cin * 2), shape: [k, k, cin, 2], strides });
    const x = new Float32Array(32);
    expect(catchIt(() => forward([map, conv('c', 3)], [x], { batch: 1 })).code).toBe('E_WIDTH');
    expect(catchIt(() => forward([map, { kind: 'dense', weight: new Float32Array(64), shape: [32, 2] }], [x], { batch: 1 })).code).toBe('E_WIDTH');
    const e = catchIt(() => forward([map, conv('a', 2), conv('b', 2, 1, 2), { kind: 'concat', name: 'cat', inputs: ['a', 'b'] }], [x], { batch: 1 }));
    expect(e.code).toBe('E_WIDTH');
    expect(e.message).toContain("'cat'");
    expect(catchIt(() => forward([map, conv('a', 2, 5)], [x], { batch: 1 })).code).toBe('E_WIDTH');
    expect(catchIt(() => forward([map, conv('a', 2)], [x], { batch: 2 })).code).toBe('E_SHAPE');
    expect(catchIt(() => forward([map, conv('a', 2)], [x, x], { batch: 1 })).code).toBe('E_OPTION');
  });
});

describe('forward: speed', () => {
  it('runs a full-width ResNet-18 (CIFAR stem) at 16x16 in about a second per example', () => {
    const rng = mulberry32(7);
    const net: Layer[] = [{ kind: 'input', name: 'x', shape: [16, 16, 3] }];
    let id = 0;
    const convBn = (from: string, cin: number, cout: number, k: number, strides: number, relu: boolean): string => {
      const name = `c${id++}`;
      net.push({ kind: 'conv2d', name, inputs: [from], weight: uniform(k * k * cin * cout, rng, Math.sqrt(3 / (k * k * cin))), shape: [k, k, cin, cout], strides, padding: 'same' });
      net.push({ kind: 'batch-norm', name: `${name}/bn`, mean: uniform(cout, rng, 0.1), variance: uniform(cout, rng, 0.1).map((v) => 1 + v) });
      if (!relu) return `${name}/bn`;
      net.push({ kind: 'relu', name: `${name}/relu` });
      return `${name}/relu`;
    };
    let h = convBn('x', 3, 64, 3, 1, true);
    let c = 64;
    for (const [width, stride] of [[64, 1], [128, 2], [256, 2], [512, 2]]) {
      for (let block = 0; block < 2; block++) {
        const s = block === 0 ? stride : 1;
        const a = convBn(h, c, width, 3, s, true);
        const b = convBn(a, width, width, 3, 1, false);
        const short = s !== 1 || c !== width ? convBn(h, c, width, 1, s, false) : h;
        net.push({ kind: 'add', name: `add${id}`, inputs: [b, short] });
        net.push({ kind: 'relu', name: `out${id++}` });
        h = `out${id - 1}`;
        c = width;
      }
    }
    net.push({ kind: 'global-avg-pool' }, { kind: 'dense', weight: uniform(512 * 10, rng, 0.05), shape: [512, 10] });
    const batch = 2;
    const t0 = performance.now();
    const [y] = forward(net, [uniform(batch * 16 * 16 * 3, rng)], { batch });
    const perExample = (performance.now() - t0) / 1000 / batch;
    console.log(`ResNet-18 (full widths, 16x16 input): ${perExample.toFixed(3)} s per example`);
    expect(y.length).toBe(batch * 10);
    expect(y.every(Number.isFinite)).toBe(true);
    expect(perExample).toBeLessThan(5);
  });
});

describe('forward: the shape pass runs first and allocates nothing proportional to the shapes', () => {
  const catchIt = throwsENormError;
  const convNet = (): Network => [
    { kind: 'input', name: 'x', shape: [8, 8, 3] },
    { kind: 'conv2d', name: 'conv', weight: new Float32Array(3 * 3 * 3 * 4), shape: [3, 3, 3, 4], padding: 'same', strides: 2 },
    { kind: 'relu', name: 'relu' },
    { kind: 'max-pool', name: 'pool', size: 2 },
    { kind: 'global-avg-pool', name: 'gap' },
    { kind: 'dense', name: 'fc', weight: new Float32Array(4 * 5), shape: [4, 5] },
  ];

  it('a width error deep in the network is reported before the input is even bound', () => {
    const net: Network = [
      { kind: 'input', shape: [3] },
      { kind: 'dense', name: 'fc1', weight: new Float32Array(12), shape: [3, 4] },
      { kind: 'dense', name: 'fc2', weight: new Float32Array(10), shape: [5, 2] },
    ];
    // The input is also the wrong length; the network's own inconsistency comes first.
    const e = catchIt(() => forward(net, [new Float32Array(1)], { batch: 1 }));
    expect(e.code).toBe('E_WIDTH');
    expect(e.details.layer).toBe('fc2');
  });

  it('shapes, work and memory per example, for a declared 100,000 x 100,000 image that is never allocated', () => {
    const small = forwardShapes(convNet(), 'nhwc');
    expect(small.shapes.slice(1)).toEqual([[4, 4, 4], [4, 4, 4], [2, 2, 4], [4], [5]]);
    expect(small.outputValuesPerExample).toBe(5);
    const huge = forwardShapes(convNet(), 'nhwc', [[100_000, 100_000, 3]]);
    expect(huge.shapes[1]).toEqual([50_000, 50_000, 4]);
    expect(huge.shapes[3]).toEqual([25_000, 25_000, 4]);
    // At least the convolution's multiply-adds: 50,000^2 positions x 3x3 taps x 3 x 4 channels.
    expect(huge.workPerExample).toBeGreaterThanOrEqual(50_000 ** 2 * 9 * 12);
    expect(huge.peakValuesPerExample).toBeGreaterThanOrEqual(100_000 ** 2 * 3 + 50_000 ** 2 * 4);
    const e = catchIt(() => forwardShapes(convNet(), 'nhwc', [[100_000, 100_000, 2]]));
    expect(e.code).toBe('E_WIDTH');
    expect(e.message).toBe("layer 'conv': conv2d expects 3 input channels but receives 2");
  });

  it("prototype names are unknown kinds and activations ('constructor', 'toString')", () => {
    for (const name of ['constructor', 'toString', '__proto__']) {
      const kind = catchIt(() => forward([{ kind: name } as unknown as Layer], [[1]], { batch: 1, inputShapes: [[1]] }));
      expect(kind.code).toBe('E_LAYER_KIND');
      const fn = catchIt(() => forward([{ kind: 'input', shape: [2] }, { kind: 'activation', name: 'act', fn: name } as unknown as Layer], [[1, 2]], { batch: 1 }));
      expect(fn.code).toBe('E_LAYER_KIND');
      expect(fn.message).toContain("layer 'act'");
    }
  });

  it('pooling windows larger than the input visit only the input: same-padded average pooling of the whole map', () => {
    const x = Float32Array.from({ length: 9 }, (_, i) => i + 1);
    const net: Network = [{ kind: 'input', shape: [3, 3, 1] }, { kind: 'avg-pool', size: 1001, strides: 1001, padding: 'same' }];
    expect([...forward(net, [x], { batch: 1 })[0]]).toEqual([5]);
    const max: Network = [{ kind: 'input', shape: [3, 3, 1] }, { kind: 'max-pool', size: [1001, 3], strides: [1, 3], padding: 'same' }];
    expect([...forward(max, [x], { batch: 1 })[0]]).toEqual([9, 9, 9]);
  });
});
