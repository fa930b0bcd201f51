/**
 * How ONNX ops map to enorm layers and barriers: every op enorm does not rescale is reported, and
 * the balanced file still computes the same function in onnxruntime; float16 weights are written
 * back rounded, and the network's arrays hold the rounded values.
 */
import { describe, expect, it } from 'vitest';
import { balance } from '../../../src/index.js';
import { readOnnxModel, roundTrip, writeOnnxModel } from '../../../src/model-io/onnx/index.js';
import { floatToHalf, halfToFloat } from '../../../src/model-io/onnx/tensors.js';
import { buildOnnx, init, torchMlp, type ModelSpec, type NodeSpec } from '../../helpers/onnx-builder.js';
import { bytesOutside, patchedRanges, relativeDeviation, run } from '../../helpers/onnx-run.js';

/**
 * x[N,8] -> Gemm -> Relu = a0 -> Gemm -> Relu -> Gemm -> y, and the middle op reads a0 into m, the
 * first graph output (the one the runner returns). a0 also feeds the balanced Gemms, so only the
 * pin keeps its units at scale 1: without it m would change.
 */
function sandwich(middle: NodeSpec[], extraInit = [] as ModelSpec['initializers']): ModelSpec {
  const g = (i: number, input: string, output: string, out: number, inp: number): NodeSpec =>
    ({ op: 'Gemm', inputs: [input, `w${i}`, `b${i}`], outputs: [output], attrs: { transB: { i: 1 } } });
  return {
    inputs: [{ name: 'x', dims: ['N', 8] }],
    outputs: [{ name: 'm' }, { name: 'y', dims: ['N', 4] }],
    initializers: [init('w0', [8, 8], 41), init('b0', [8], 42), init('w1', [8, 8], 43), init('b1', [8], 44), init('w2', [4, 8], 45), init('b2', [4], 46), ...(extraInit ?? [])],
    nodes: [
      g(0, 'x', 'h0', 8, 8), { op: 'Relu', inputs: ['h0'], outputs: ['a0'] }, ...middle,
      g(1, 'a0', 'h1', 8, 8), { op: 'Relu', inputs: ['h1'], outputs: ['a1'] }, g(2, 'a1', 'y', 4, 8),
    ],
  };
}

async function balancedAgrees(spec: ModelSpec, shape: number[]) {
  const { bytes } = buildOnnx(spec);
  const model = readOnnxModel(bytes);
  const before = await run(bytes, shape);
  const report = await balance(model.network, { backend: 'js' });
  const out = writeOnnxModel(model);
  expect(relativeDeviation(before, await run(out, shape))).toBeLessThan(1e-4);
  expect(bytesOutside(bytes, out, patchedRanges(model))).toBe(0);
  return { model, report };
}

describe('ONNX ops enorm does not rescale', () => {
  it.each([
    ['Sigmoid', [{ op: 'Sigmoid', inputs: ['a0'], outputs: ['m'] }], 'activation'],
    ['Clip to [0, 6] (ReLU6, never replaced by ReLU)', [{ op: 'Clip', inputs: ['a0', 'lo', 'hi'], outputs: ['m'] }], 'activation'],
    ['HardSwish (cut)', [{ op: 'HardSwish', inputs: ['a0'], outputs: ['m'] }], 'cut'],
    ['Mul by a computed tensor (cut)', [{ op: 'Mul', inputs: ['a0', 'a0'], outputs: ['m'] }], 'cut'],
    ['decomposed LayerNorm over the batch axis (ReduceMean axes [0], Sub, Pow, ReduceMean, Add, Sqrt, Div, Mul, Add; cut)', [
      { op: 'ReduceMean', inputs: ['a0'], outputs: ['mu'], attrs: { axes: { ints: [0] } } },
      { op: 'Sub', inputs: ['a0', 'mu'], outputs: ['dev'] },
      { op: 'Pow', inputs: ['dev', 'two'], outputs: ['dev2'] },
      { op: 'ReduceMean', inputs: ['dev2'], outputs: ['var'], attrs: { axes: { ints: [0] } } },
      { op: 'Add', inputs: ['var', 'eps'], outputs: ['ve'] },
      { op: 'Sqrt', inputs: ['ve'], outputs: ['sd'] },
      { op: 'Div', inputs: ['dev', 'sd'], outputs: ['nrm'] },
      { op: 'Mul', inputs: ['nrm', 'ln.weight'], outputs: ['scaled'] },
      { op: 'Add', inputs: ['scaled', 'ln.bias'], outputs: ['m'] },
    ], 'cut'],
    ['LayerNormalization whose Mean output is used (cut)', [{ op: 'LayerNormalization', inputs: ['a0', 'ln.weight', 'ln.bias'], outputs: ['m', 'ln.mean'], attrs: { axis: { i: -1 } } }], 'cut'],
  ] as [string, NodeSpec[], string][])('%s keeps its units at scale 1 and is reported', async (_, middle, how) => {
    const extra = [
      { name: 'lo', dims: [], data: [0] }, { name: 'hi', dims: [], data: [6] },
      init('ln.weight', [8], 47), init('ln.bias', [8], 48), { name: 'two', dims: [], data: [2] }, { name: 'eps', dims: [], data: [1e-5] },
    ];
    const { model } = await balancedAgrees(sandwich(middle, extra), [8]);
    if (how === 'cut') {
      expect(model.barriers.map((b) => b.op)).toContain(middle[0].op);
      expect(model.weights.map((w) => w.name)).not.toContain('ln.weight');
      expect(model.network.some((l) => l.kind === 'identity' && l.name === 'a0:kept')).toBe(true);
    } else {
      expect(model.network.some((l) => l.kind === 'activation')).toBe(true);
    }
  });

  it('Clip with min 0 and no max is a ReLU', () => {
    const model = readOnnxModel(buildOnnx(sandwich([{ op: 'Clip', inputs: ['a0', 'lo'], outputs: ['m'] }], [{ name: 'lo', dims: [], data: [0] }])).bytes);
    expect(model.network.filter((l) => l.kind === 'relu')).toHaveLength(3);
    expect(model.barriers).toEqual([]);
  });

  it('a shared initializer freezes the layers that read it, with a reason', async () => {
    const spec = torchMlp();
    spec.initializers!.push(init('w1b', [16, 16], 9));
    spec.nodes.splice(2, 0, { op: 'Gemm', inputs: ['a1', 'w1b', 'fc1.bias'], outputs: ['a2'], attrs: { transB: { i: 1 } } });
    spec.nodes[3].inputs[0] = 'a2';
    const { model } = await balancedAgrees(spec, [8]);
    expect(model.barriers.map((b) => b.reason).join(' ')).toMatch(/'fc1\.bias' is read 2 times/);
    expect(model.weights.map((w) => w.name)).not.toContain('fc1.bias');
    expect(model.network.filter((l) => 'frozen' in l && l.frozen).length).toBe(2);
  });

  it('a grouped Conv is a conv2d with groups; a dilated ConvTranspose is cut and reported', () => {
    const spec: ModelSpec = {
      inputs: [{ name: 'x', dims: [1, 4, 6, 6] }], outputs: [{ name: 'y' }],
      initializers: [init('gw', [4, 2, 3, 3], 51), init('tw', [4, 2, 3, 3], 52)],
      nodes: [
        { op: 'Conv', inputs: ['x', 'gw'], outputs: ['g'], attrs: { group: { i: 2 } } },
        { op: 'ConvTranspose', inputs: ['g', 'tw'], outputs: ['y'], attrs: { dilations: { ints: [2, 2] } } },
      ],
    };
    const model = readOnnxModel(buildOnnx(spec).bytes);
    // The grouped Conv was cut before conv2d had `groups` (test/model-io/onnx/grouped.test.ts has one that still is).
    expect(model.barriers.map((b) => b.op)).toEqual(['ConvTranspose']);
    expect(model.network.find((l) => l.name === 'g')).toMatchObject({ kind: 'conv2d', layout: 'oihw', groups: 2, shape: [4, 2, 3, 3] });
    expect(model.weights.map((w) => w.name)).toEqual(['gw']);
  });

  it('a node whose attribute has the GRAPH type (If) is a cut, not refused (subgraphs.test.ts has real branches)', () => {
    const spec = torchMlp();
    const { bytes } = buildOnnx(spec);
    // An If node whose then_branch is a graph attribute (type GRAPH = 5).
    const withIf = buildOnnx({ ...spec, nodes: [...spec.nodes, { op: 'If', inputs: ['y'], outputs: ['z'], attrs: { then_branch: { i: 0 } } }] });
    expect(bytes.length).toBeGreaterThan(0);
    const patched = withIf.bytes;
    // Rewrite the attribute type of then_branch from INT (2) to GRAPH (5): field 20, varint -> bytes a0 01 02.
    const at = findLast(patched, [0xa0, 0x01, 0x02]);
    patched[at + 2] = 5;
    const model = readOnnxModel(patched);
    expect(model.barriers).toContainEqual({ node: expect.stringMatching(/^If_/), op: 'If', reason: expect.stringMatching(/with subgraphs is not rescaled: its inputs and the 0 outer tensors/) });
    expect(model.network.some((l) => l.kind === 'identity' && l.inputs?.[0] === 'y')).toBe(true);
  });
});

function findLast(bytes: Uint8Array, pattern: number[]): number {
  for (let i = bytes.length - pattern.length; i >= 0; i--) if (pattern.every((b, j) => bytes[i + j] === b)) return i;
  throw new Error('pattern not found');
}

describe('float16 weights', () => {
  it('are balanced in float32, written back as float16 (rounded to nearest even), and the arrays hold the rounded values', async () => {
    const { bytes } = buildOnnx(torchMlp({}, 'float16'));
    const model = readOnnxModel(bytes);
    expect(model.weights.every((w) => w.dtype === 'float16')).toBe(true);
    const before = await run(bytes, [8]);
    await balance(model.network, { backend: 'js' });
    const unrounded = model.weights.map((w) => Float32Array.from(w.data));
    const out = writeOnnxModel(model);
    model.weights.forEach((w, i) => {
      for (let j = 0; j < w.data.length; j++) expect(w.data[j]).toBe(halfToFloat(floatToHalf(unrounded[i][j])));
    });
    expect(unrounded.some((u, i) => u.some((v, j) => v !== model.weights[i].data[j]))).toBe(true);
    // Read back: the file holds exactly the arrays' values.
    const again = readOnnxModel(out);
    again.weights.forEach((w, i) => expect(Array.from(w.data)).toEqual(Array.from(model.weights[i].data)));
    expect(bytesOutside(bytes, out, patchedRanges(model))).toBe(0);
    expect(relativeDeviation(before, await run(out, [8]))).toBeLessThan(2e-2); // fp16 arithmetic and rounding
    expect(roundTrip(again)).toBe(again);
  });

  it('floatToHalf rounds to nearest, ties to even, and saturates to Infinity', () => {
    expect(floatToHalf(1)).toBe(0x3c00);
    expect(floatToHalf(1 + 2 ** -11)).toBe(0x3c00); // tie: to even
    expect(floatToHalf(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie: to even (up)
    expect(floatToHalf(65504)).toBe(0x7bff);
    expect(floatToHalf(70000)).toBe(0x7c00);
    expect(floatToHalf(2 ** -24)).toBe(1);
    expect(floatToHalf(-0)).toBe(0x8000);
    expect(halfToFloat(0x3555)).toBeCloseTo(0.33325, 5);
  });
});
