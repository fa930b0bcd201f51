/**
 * The layer-norm kind and per-channel leaky-relu (PReLU): float64 forward pass against real tfjs,
 * the rescaling rule (the producer of a layer norm is pinned and reported, its own units move on
 * gamma and beta), function preservation through balance, and hostile descriptions.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { balance } from '../../src/engine/enorm.js';
import { ENormError, type ENormErrorCode } from '../../src/errors.js';
import { forward } from '../../src/network/forward.js';
import type { Layer, Network } from '../../src/network/layers.js';
import { mulberry32 } from '../../src/network/random.js';
import { validateLayers } from '../../src/network/validate.js';
import { compilePlan } from '../../src/plan/compile.js';
import { balanceReference } from '../../src/reference/reference.js';
import { cloneNetwork, maxRelDiff } from '../helpers/arrays.js';

const rng = mulberry32(11);
const rand = (n: number, lo = -1, hi = 1) => Float32Array.from({ length: n }, () => lo + (hi - lo) * rng());
const plan = (net: Network) => compilePlan(net, { includeBiases: true, residual: 'complete' });

/** dense(4 -> 5) -> layer-norm -> relu -> dense(5 -> 6) -> leaky-relu (per channel) -> dense(6 -> 3), badly scaled. */
function lnNet(): Network {
  const skew = (a: Float32Array, units: number, f: (u: number) => number) => a.map((w, i) => w * f(i % units));
  return [
    { kind: 'dense', name: 'd1', shape: [4, 5], weight: rand(20), bias: rand(5) },
    { kind: 'layer-norm', name: 'ln', gamma: rand(5, 0.2, 3), beta: rand(5), epsilon: 1e-5 },
    { kind: 'relu', name: 'r' },
    { kind: 'dense', name: 'd2', shape: [5, 6], weight: skew(rand(30), 6, (u) => 0.1 * 4 ** u), bias: rand(6) },
    { kind: 'leaky-relu', name: 'pr', alpha: Float32Array.from([0.2, -0.4, 0, 0.05, 1.5, -1]) }, // any slope is positively homogeneous
    { kind: 'dense', name: 'd3', shape: [6, 3], weight: rand(18), bias: rand(3) },
  ];
}

const input = Float64Array.from({ length: 7 * 4 }, (_, i) => Math.sin(1.3 * i) * 2);

function expectError(f: () => unknown, code: ENormErrorCode, pattern: RegExp): void {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ENormError);
  expect((err as ENormError).code).toBe(code);
  expect((err as ENormError).message).toMatch(pattern);
}

describe('layer-norm: forward pass', () => {
  it('matches tfjs LayerNormalization on vectors and on NHWC maps (per position, over channels)', () => {
    for (const shape of [[6], [3, 2, 5]]) {
      const c = shape[shape.length - 1];
      const gamma = rand(c, 0.5, 2);
      const beta = rand(c);
      const x = rand(4 * shape.reduce((a, b) => a * b, 1), -3, 3);
      const ln = tf.layers.layerNormalization({ axis: -1, epsilon: 1e-4, inputShape: shape });
      const model = tf.sequential({ layers: [ln] });
      ln.setWeights([tf.tensor(gamma), tf.tensor(beta)]);
      const expected = (model.predict(tf.tensor(x, [4, ...shape])) as tf.Tensor).dataSync();
      const got = forward([{ kind: 'layer-norm', gamma, beta, epsilon: 1e-4 }], [x], { batch: 4, inputShapes: [shape] })[0];
      expect(maxRelDiff(got, expected)).toBeLessThan(1e-5);
    }
  });

  it('without gamma and beta it is the plain normalisation: every row has mean 0 and variance 1/(1 + eps/var)', () => {
    const x = rand(3 * 8, -2, 2);
    const y = forward([{ kind: 'layer-norm', epsilon: 0 }], [x], { batch: 3, inputShapes: [[8]] })[0];
    for (let r = 0; r < 3; r++) {
      const row = y.subarray(8 * r, 8 * r + 8);
      const mean = row.reduce((a, b) => a + b, 0) / 8;
      const variance = row.reduce((a, b) => a + (b - mean) ** 2, 0) / 8;
      expect(Math.abs(mean)).toBeLessThan(1e-12);
      expect(variance).toBeCloseTo(1, 10);
    }
  });
});

describe('leaky-relu with per-channel slopes (PReLU)', () => {
  it('matches tfjs PReLU with shared spatial axes on a map, and on a vector', () => {
    for (const [shape, shared] of [[[6], undefined], [[3, 2, 4], [1, 2]]] as [number[], number[] | undefined][]) {
      const c = shape[shape.length - 1];
      const alpha = rand(c, -0.5, 0.9);
      const x = rand(2 * shape.reduce((a, b) => a * b, 1), -3, 3);
      const prelu = tf.layers.prelu({ inputShape: shape, ...(shared && { sharedAxes: shared }) });
      const model = tf.sequential({ layers: [prelu] });
      prelu.setWeights([tf.tensor(alpha, shared ? [1, 1, c] : [c])]);
      const expected = (model.predict(tf.tensor(x, [2, ...shape])) as tf.Tensor).dataSync();
      const got = forward([{ kind: 'leaky-relu', alpha }], [x], { batch: 2, inputShapes: [shape] })[0];
      expect(maxRelDiff(got, expected)).toBeLessThan(1e-6);
    }
  });

  it('a number alpha still means one slope for every channel', () => {
    const x = Float64Array.from([-2, 1, -4, 3]);
    expect(Array.from(forward([{ kind: 'leaky-relu', alpha: 0.25 }], [x], { batch: 1, inputShapes: [[4]] })[0])).toEqual([-0.5, 1, -1, 3]);
  });
});

describe('layer-norm and PReLU: the rescaling rule', () => {
  it("the layer before a layer norm is pinned and reported; the norm's units are a group written by gamma and beta", () => {
    const net = lnNet();
    const p = plan(net);
    expect(p.groups.map((g) => g.name)).toEqual(['ln', 'd2']); // d1 is pinned; per-channel leaky-relu passes d2's scales
    expect(p.barriers).toEqual([{ layer: 'ln', reason: "layer norm cancels only a uniform input scale: the units of 'd1' keep scale 1" }]);
    const ln = p.groups[0];
    expect(ln.writers.map((w) => p.tensors[w.tensor].role)).toEqual(['gamma', 'beta']);
    expect(ln.readers.map((r) => p.tensors[r.tensor].layer)).toEqual(['d2']);
    expect(p.tensors.filter((t) => t.layer === 'd1').map((t) => t.role)).toEqual(['weight', 'bias']); // d1's tensors are read by no group's writers
    expect(p.groups.flatMap((g) => g.writers).some((w) => p.tensors[w.tensor].layer === 'd1')).toBe(false);
  });

  it('a layer norm without gamma cannot carry a scale (reported); with only beta, or on an unknown input, nothing breaks', () => {
    const base = lnNet();
    const noGamma = base.map((l) => (l.kind === 'layer-norm' ? { ...l, gamma: undefined } : l)) as Network;
    const p = plan(noGamma);
    expect(p.groups.map((g) => g.name)).toEqual(['d2']);
    expect(p.barriers.map((b) => b.reason)).toContain('layer norm without gamma: its channels cannot carry a scale');
    const bare: Network = [{ kind: 'layer-norm', name: 'ln0' }, { kind: 'dense', name: 'd', shape: [3, 2], weight: rand(6) }];
    expect(plan(bare).groups).toEqual([]);
  });

  it('balance (engine and float64 reference) keeps the function, moves gamma and beta, and leaves the pinned producer untouched', async () => {
    const net = lnNet();
    const d1 = Float32Array.from((net[0] as Layer & { kind: 'dense' }).weight);
    const gamma = Float32Array.from((net[1] as Layer & { kind: 'layer-norm' }).gamma!);
    const before = forward(net, [input], { batch: 7 })[0];
    const ref = balanceReference(cloneNetwork(net), { tolerance: 1e-10, maxCycles: 500 });
    const report = await balance(net, { tolerance: 1e-10, maxCycles: 500 });
    expect(Math.abs(report.energyAfter - ref.energies[ref.energies.length - 1])).toBeLessThan(1e-4 * ref.energyBefore);
    expect(report.energyAfter).toBeLessThan(0.9 * report.energyBefore);
    expect(Array.from((net[0] as Layer & { kind: 'dense' }).weight)).toEqual(Array.from(d1));
    expect(maxRelDiff((net[1] as Layer & { kind: 'layer-norm' }).gamma!, gamma)).toBeGreaterThan(1e-3);
    const after = forward(net, [input], { batch: 7 })[0];
    expect(maxRelDiff(after, before)).toBeLessThan(1e-5);
    expect(report.barriers.map((b) => b.layer)).toContain('ln');
  });
});

describe('layer-norm and PReLU: hostile descriptions', () => {
  const withLn = (ln: Record<string, unknown>): Network => [
    { kind: 'dense', name: 'd1', shape: [4, 5], weight: rand(20) },
    { kind: 'layer-norm', name: 'ln', ...ln } as unknown as Layer,
    { kind: 'dense', name: 'd2', shape: [5, 2], weight: rand(10) },
  ];
  const withPrelu = (alpha: unknown): Network => [
    { kind: 'dense', name: 'd1', shape: [4, 5], weight: rand(20) },
    { kind: 'leaky-relu', name: 'pr', alpha } as unknown as Layer,
    { kind: 'dense', name: 'd2', shape: [5, 2], weight: rand(10) },
  ];
  const cases: [string, () => unknown, ENormErrorCode, RegExp][] = [
    ['axis other than -1', () => validateLayers(withLn({ axis: 1, gamma: rand(5) })), 'E_OPTION', /layer 'ln' \(layer-norm\): axis must be -1 .* got 1/],
    ['gamma not a Float32Array', () => validateLayers(withLn({ gamma: [1, 2, 3, 4, 5] })), 'E_TYPE', /layer 'ln' \(layer-norm\): gamma must be a Float32Array/],
    ['beta shorter than gamma', () => validateLayers(withLn({ gamma: rand(5), beta: rand(4) })), 'E_SHAPE', /layer 'ln' \(layer-norm\): beta has 4 elements, expected 5/],
    ['empty gamma', () => validateLayers(withLn({ gamma: new Float32Array(0) })), 'E_SHAPE', /layer 'ln' \(layer-norm\): gamma is empty/],
    ['NaN in beta', () => validateLayers(withLn({ beta: Float32Array.from([0, 0, NaN, 0, 0]) })), 'E_NONFINITE', /layer 'ln' \(layer-norm\): beta\[2\] is NaN/],
    ['negative epsilon', () => validateLayers(withLn({ gamma: rand(5), epsilon: -1 })), 'E_OPTION', /layer 'ln' \(layer-norm\): epsilon must be a finite number >= 0/],
    ['companion of a missing gamma', () => validateLayers(withLn({ beta: rand(5), companions: { gamma: rand(5) } })), 'E_SHAPE', /companions.gamma given but the layer has no gamma/],
    ['gamma wider than its input (plan)', () => plan(withLn({ gamma: rand(6) })), 'E_WIDTH', /layer 'ln' \(layer-norm\): feature count is 6 but its input 'd1' has 5/],
    ['gamma wider than its input (forward)', () => forward(withLn({ gamma: rand(6) }), [input], { batch: 7 }), 'E_SHAPE', /layer 'ln': gamma should hold 5 values, has 6/],
    ['gamma aliasing the next kernel', () => { const n = withLn({}); (n[1] as { gamma?: Float32Array }).gamma = (n[2] as Layer & { kind: 'dense' }).weight.subarray(0, 5); return validateLayers(n); }, 'E_ALIAS', /layer 'd2' weight shares memory with layer 'ln' gamma|layer 'ln' gamma shares memory with layer 'd2' weight/],
    ['slopes not Float32Array', () => validateLayers(withPrelu([0.1, 0.2])), 'E_TYPE', /layer 'pr' \(leaky-relu\): alpha must be a Float32Array/],
    ['empty slopes', () => validateLayers(withPrelu(new Float32Array(0))), 'E_SHAPE', /layer 'pr' \(leaky-relu\): alpha is empty/],
    ['Infinity slope', () => validateLayers(withPrelu(Float32Array.from([0.1, Infinity, 0, 0, 0]))), 'E_NONFINITE', /layer 'pr' \(leaky-relu\): alpha\[1\] is Infinity/],
    ['slopes of the wrong length (forward)', () => forward(withPrelu(rand(3)), [input], { batch: 7 }), 'E_SHAPE', /layer 'pr': alpha should hold 5 values, has 3/],
    ['slopes inside a rescaled kernel', () => { const n = withPrelu(undefined); (n[1] as { alpha?: Float32Array }).alpha = (n[2] as Layer & { kind: 'dense' }).weight.subarray(0, 5); return validateLayers(n); }, 'E_ALIAS', /alpha/],
    ['NaN number alpha', () => validateLayers(withPrelu(NaN)), 'E_OPTION', /layer 'pr' \(leaky-relu\): alpha must be finite, got NaN/],
  ];
  it.each(cases)('%s', (_name, f, code, pattern) => expectError(f, code, pattern));
});
