/**
 * LayerNormalization (the opset-17 op and the decomposed pattern), PRelu with per-channel slopes
 * and ConvTranspose, mapped to layer-norm / leaky-relu / conv2d-transpose: balanced, written and
 * run in onnxruntime-web against the original (1e-4 relative), with the energy down and the
 * mapped layer's own tensors changed. The forms enorm does not express stay cut and reported.
 */
import { describe, expect, it } from 'vitest';
import { balance } from '../../../src/index.js';
import type { Layer } from '../../../src/network/layers.js';
import { readOnnxModel, writeOnnxModel } from '../../../src/model-io/onnx/index.js';
import {
  buildOnnx, convTransposeNet, decomposedLayerNorm, init, layerNormConstants, torchConvNet, torchLayerNormMlp, type LayerNormStyle, type ModelSpec, type NodeSpec,
} from '../../helpers/onnx-builder.js';
import { bytesOutside, patchedRanges, relativeDeviation, run } from '../../helpers/onnx-run.js';
import { throwsENormError } from '../../helpers/errors.js';

/** Read, balance, write, run both files: same outputs, lower energy, only the rescaled payloads changed. */
async function balanced(spec: ModelSpec, shape: number[]) {
  const { bytes } = buildOnnx(spec);
  const model = readOnnxModel(bytes);
  const original = new Map(model.weights.map((w) => [w.name, Float32Array.from(w.data)]));
  const before = await run(bytes, shape);
  const report = await balance(model.network, { backend: 'js' });
  const out = writeOnnxModel(model);
  expect(relativeDeviation(before, await run(out, shape))).toBeLessThan(1e-4);
  expect(report.energyAfter).toBeLessThan(report.energyBefore * 0.99);
  expect(bytesOutside(bytes, out, patchedRanges(model))).toBe(0);
  const changed = (name: string) => {
    const now = model.weights.find((w) => w.name === name)?.data;
    return now !== undefined && now.some((v, i) => v !== original.get(name)![i]);
  };
  return { model, changed };
}

/** Reads the model and runs the original against the written balanced file, for forms that stay cut. */
async function cutButKept(spec: ModelSpec, shape: number[]) {
  const { bytes } = buildOnnx(spec);
  const model = readOnnxModel(bytes);
  const before = await run(bytes, shape);
  await balance(model.network, { backend: 'js' });
  expect(relativeDeviation(before, await run(writeOnnxModel(model), shape))).toBeLessThan(1e-4);
  return model;
}

const kinds = (model: { network: Layer[] }) => model.network.map((l) => l.kind);

describe('LayerNormalization and the decomposed layer norm', () => {
  it.each([
    ['the opset-17 LayerNormalization op', 'op'],
    ['the decomposed pattern with Pow(d, 2)', 'pow'],
    ['the decomposed pattern with Mul(d, d)', 'mul'],
    ['the decomposed pattern with opset-18 ReduceMean (axes as an input)', 'opset18'],
  ] as [string, LayerNormStyle][])('PyTorch-style Gemm -> %s -> Relu -> Gemm is one layer-norm whose gamma and beta carry the scale', async (_, style) => {
    const { model, changed } = await balanced(torchLayerNormMlp(style), [8]);
    expect(kinds(model)).toEqual(['input', 'dense', 'layer-norm', 'relu', 'dense', 'identity']);
    expect(model.barriers).toEqual([]);
    const ln = model.network[2] as Extract<Layer, { kind: 'layer-norm' }>;
    expect(ln.epsilon).toBeCloseTo(1e-5, 10);
    expect(ln.gamma).toHaveLength(12);
    expect(model.weights.map((w) => w.name)).toEqual(['fc1.weight', 'fc1.bias', 'ln.weight', 'ln.bias', 'fc2.weight', 'fc2.bias']);
    expect(changed('ln.weight')).toBe(true);
    expect(changed('ln.bias')).toBe(true);
    // The Gemm before the norm keeps scale 1: its tensors are not touched.
    expect(changed('fc1.weight')).toBe(false);
    expect(changed('fc2.weight')).toBe(true);
  });

  it('a negative or non-finite epsilon (LayerNormalization, BatchNormalization) is E_MODEL naming the node', () => {
    for (const eps of [-1e-5, NaN, Infinity]) {
      const ln = torchLayerNormMlp('op');
      ln.nodes[1].attrs = { ...ln.nodes[1].attrs, epsilon: { f: eps } };
      const conv = torchConvNet();
      conv.nodes[1].attrs = { epsilon: { f: eps } };
      for (const [spec, op] of [[ln, 'LayerNormalization'], [conv, 'BatchNormalization']] as const) {
        const err = throwsENormError(() => readOnnxModel(buildOnnx(spec).bytes));
        expect(err.code).toBe('E_MODEL');
        expect(err.message).toMatch(new RegExp(`^ONNX node '.*' \\('${op}'\\): epsilon must be a finite number >= 0`));
      }
    }
  });

  it('LayerNormalization over axis 1 of [N, F] is the same layer-norm', () => {
    const spec = torchLayerNormMlp('op');
    spec.nodes[1].attrs = { axis: { i: 1 } };
    const model = readOnnxModel(buildOnnx(spec).bytes);
    expect(kinds(model)).toContain('layer-norm');
    expect((model.network[2] as { epsilon?: number }).epsilon).toBeCloseTo(1e-5, 10); // the ONNX default
  });

  /** x[N,2,4,4] -> Conv -> Relu -> `norm` of c -> Relu: LN over the last axis (W) of a map. */
  const mapNorm = (norm: NodeSpec[]): ModelSpec => ({
    inputs: [{ name: 'x', dims: ['N', 2, 4, 4] }], outputs: [{ name: 'y' }],
    initializers: [init('cw', [4, 2, 3, 3], 81), init('cb', [4], 82), ...layerNormConstants(4, 83)],
    nodes: [
      { op: 'Conv', inputs: ['x', 'cw', 'cb'], outputs: ['c0'], attrs: { pads: { ints: [1, 1, 1, 1] } } },
      { op: 'Relu', inputs: ['c0'], outputs: ['c'] }, ...norm, { op: 'Relu', inputs: ['n'], outputs: ['y'] },
    ],
  });

  it.each([
    ['LayerNormalization on axis -1 of a rank-4 map (its W axis)', mapNorm([{ op: 'LayerNormalization', inputs: ['c', 'ln.weight', 'ln.bias'], outputs: ['n'] }]), 'LayerNormalization', /rank-4/],
    ['the decomposed pattern on a rank-4 map', mapNorm(decomposedLayerNorm('c', 'n', 'pow')), 'ReduceMean', /outside a decomposed layer norm/],
  ] as [string, ModelSpec, string, RegExp][])('%s stays cut, reported, and the function is kept', async (_, spec, op, why) => {
    const model = await cutButKept(spec, [2, 4, 4]);
    expect(kinds(model)).not.toContain('layer-norm');
    const barrier = model.barriers.find((b) => b.op === op);
    expect(barrier?.reason).toMatch(why);
    expect(model.weights.map((w) => w.name)).not.toContain('ln.weight');
  });

  it('a decomposed pattern whose variance is read outside it stays cut piece by piece', async () => {
    const spec = torchLayerNormMlp('pow');
    spec.outputs.push({ name: 'ln.var' });
    const model = await cutButKept(spec, [8]);
    expect(kinds(model)).not.toContain('layer-norm');
    expect(model.barriers.map((b) => b.op)).toEqual(expect.arrayContaining(['ReduceMean', 'Sub', 'Pow', 'Sqrt', 'Div', 'Mul']));
  });

  it('a LayerNormalization whose gamma does not match the features, or whose Mean output is used, is cut', () => {
    const wrong = torchLayerNormMlp('op');
    wrong.initializers = wrong.initializers!.map((t) => (t.name === 'ln.weight' ? init('ln.weight', [12, 1], 63) : t));
    expect(readOnnxModel(buildOnnx(wrong).bytes).barriers.map((b) => b.reason)).toEqual([expect.stringMatching(/scale \(gamma\) is not a constant of one value per feature/)]);
    const withMean = torchLayerNormMlp('op');
    withMean.nodes[1].outputs = ['n1', 'ln.mean'];
    expect(readOnnxModel(buildOnnx(withMean).bytes).barriers.map((b) => b.reason)).toEqual([expect.stringMatching(/Mean or InvStdDev/)]);
  });
});

describe('PRelu', () => {
  /** x[N,8] -> Gemm -> PRelu(slope) -> Gemm -> y. */
  const mlp = (slope: { dims: number[]; data: number[] }): ModelSpec => ({
    inputs: [{ name: 'x', dims: ['N', 8] }], outputs: [{ name: 'y' }],
    initializers: [init('w1', [6, 8], 91), init('b1', [6], 92), { name: 'slope', ...slope }, init('w2', [3, 6], 93), init('b2', [3], 94)],
    nodes: [
      { op: 'Gemm', inputs: ['x', 'w1', 'b1'], outputs: ['h'], attrs: { transB: { i: 1 } } },
      { op: 'PRelu', inputs: ['h', 'slope'], outputs: ['a'] },
      { op: 'Gemm', inputs: ['a', 'w2', 'b2'], outputs: ['y'], attrs: { transB: { i: 1 } } },
    ],
  });

  it('one slope per feature ([C], mixed signs) is a leaky-relu with a Float32Array alpha', async () => {
    const slopes = [0.1, -0.3, 2, 0, 0.5, -1];
    const { model } = await balanced(mlp({ dims: [6], data: slopes }), [8]);
    const act = model.network.find((l) => l.kind === 'leaky-relu') as Extract<Layer, { kind: 'leaky-relu' }>;
    expect(act.alpha).toBeInstanceOf(Float32Array);
    expect(Array.from(act.alpha as Float32Array)).toEqual(Array.from(Float32Array.from(slopes)));
    expect(model.barriers).toEqual([]);
  });

  it('a single negative slope is a leaky-relu with a number alpha', async () => {
    const { model } = await balanced(mlp({ dims: [1], data: [-0.25] }), [8]);
    expect(model.network.find((l) => l.kind === 'leaky-relu')).toMatchObject({ alpha: -0.25 });
  });

  it('a NaN slope is cut, not refused', () => {
    const model = readOnnxModel(buildOnnx(mlp({ dims: [1], data: [NaN] })).bytes);
    expect(model.barriers).toEqual([expect.objectContaining({ op: 'PRelu', reason: expect.stringMatching(/not a finite float constant/) })]);
  });

  it('a slope of [C, 1] on [N, C] (it broadcasts along the batch) is cut and reported', () => {
    const model = readOnnxModel(buildOnnx(mlp({ dims: [6, 1], data: [1, 2, 3, 4, 5, 6] })).bytes);
    expect(model.barriers).toEqual([expect.objectContaining({ op: 'PRelu', reason: expect.stringMatching(/not one slope per channel/) })]);
    expect(kinds(model)).not.toContain('leaky-relu');
  });

  it('a slope of [C, 1, 1] on an NCHW map is per channel (in the ConvTranspose net below)', () => {
    const model = readOnnxModel(buildOnnx(convTransposeNet()).bytes);
    const act = model.network.find((l) => l.kind === 'leaky-relu') as Extract<Layer, { kind: 'leaky-relu' }>;
    expect(Array.from(act.alpha as Float32Array)).toEqual([0.25, -0.5, 1.5, 0]);
  });
});

describe('ConvTranspose', () => {
  it.each(['same', 'valid'] as const)('Conv -> PRelu -> ConvTranspose(pads = TF same) -> Relu -> ConvTranspose(%s) is balanced as conv2d-transpose layers', async (last) => {
    const { model, changed } = await balanced(convTransposeNet(last), [3, 5, 5]);
    expect(kinds(model)).toEqual(['input', 'conv2d', 'leaky-relu', 'conv2d-transpose', 'relu', 'conv2d-transpose', 'identity']);
    expect(model.barriers).toEqual([]);
    const [up1, up2] = model.network.filter((l) => l.kind === 'conv2d-transpose');
    expect(up1).toMatchObject({ layout: 'iohw', shape: [4, 6, 4, 4], strides: [2, 2], padding: 'same' });
    expect(up2).toMatchObject({ layout: 'iohw', shape: [6, 2, 3, 3], padding: last });
    expect(changed('up1.weight') && changed('up1.bias') && changed('up2.weight')).toBe(true);
  });

  it.each([
    ['output_padding', { output_padding: { ints: [1, 1] } }],
    ['dilations 2', { dilations: { ints: [2, 2] } }],
    ['group 2', { group: { i: 2 } }],
    ['pads that are not TF same (k 4, s 2: [0, 0, 2, 2])', { pads: { ints: [0, 0, 2, 2] } }],
    ['SAME_LOWER with an odd total padding', 'lower'],
  ] as [string, NodeSpec['attrs'] | 'lower'][])('with %s is cut, reported, and the function is kept', async (_, attrs) => {
    const spec = convTransposeNet();
    if (attrs === 'lower') spec.nodes[4].attrs = { strides: { ints: [2, 2] }, auto_pad: { s: 'SAME_LOWER' } };
    else spec.nodes[2].attrs = { ...spec.nodes[2].attrs, ...attrs };
    if (_ === 'group 2') spec.initializers = spec.initializers!.map((t) => (t.name === 'up1.weight' ? init('up1.weight', [4, 3, 4, 4], 73) : t));
    const model = await cutButKept(spec, [3, 5, 5]);
    expect(model.barriers.map((b) => b.op)).toEqual(['ConvTranspose']);
    expect(model.barriers[0].reason).toMatch(/ConvTranspose with groups, dilations, output padding or shape, or pads/);
    expect(kinds(model).filter((k) => k === 'conv2d-transpose')).toHaveLength(1);
  });
});
