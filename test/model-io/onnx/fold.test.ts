/**
 * --fold-bn for ONNX: Conv / Gemm + BatchNormalization become one Conv / Gemm (the BN node and its
 * parameters are gone), the folded model computes the same function in onnxruntime, and it
 * balances and writes back like any other model.
 */
import { describe, expect, it } from 'vitest';
import { balance } from '../../../src/index.js';
import { foldOnnxBatchNorm } from '../../../src/model-io/onnx/fold.js';
import { readOnnxModel, writeOnnxModel } from '../../../src/model-io/onnx/index.js';
import { buildOnnx, init, torchConvNet, weights, type ModelSpec, type TensorSpec } from '../../helpers/onnx-builder.js';
import { relativeDeviation, run } from '../../helpers/onnx-run.js';

const bnInits = (p: string, c: number, seed: number): TensorSpec[] => [
  init(`${p}.weight`, [c], seed), init(`${p}.bias`, [c], seed + 1),
  { name: `${p}.mean`, dims: [c], data: weights(seed + 2, c, 0.3) },
  { name: `${p}.var`, dims: [c], data: Array.from(weights(seed + 3, c, 0.5), (v) => 0.2 + Math.abs(v)) },
];
const bn = (p: string, x: string, y: string) => ({ op: 'BatchNormalization', inputs: [x, `${p}.weight`, `${p}.bias`, `${p}.mean`, `${p}.var`], outputs: [y] });

async function foldsExactly(spec: ModelSpec, shape: number[], expectFolded: number) {
  const { bytes } = buildOnnx(spec);
  const model = readOnnxModel(bytes);
  const before = await run(bytes, shape);
  const { model: folded, folded: names } = foldOnnxBatchNorm(model);
  expect(names).toHaveLength(expectFolded);
  expect(folded.network.some((l) => l.kind === 'batch-norm')).toBe(false);
  expect(folded.source.bytes.length).toBeLessThan(bytes.length); // the BN node and its parameters are gone
  expect(relativeDeviation(before, await run(folded.source.bytes, shape))).toBeLessThan(1e-5);
  const report = await balance(folded.network, { backend: 'js' });
  expect(report.energyAfter).toBeLessThan(report.energyBefore);
  expect(relativeDeviation(before, await run(writeOnnxModel(folded), shape))).toBeLessThan(1e-4);
  return folded;
}

describe('foldOnnxBatchNorm', () => {
  it('Conv without a bias + BN (PyTorch conv net): a bias initializer is added to the Conv', async () => {
    const folded = await foldsExactly(torchConvNet(), [3, 8, 8], 1);
    expect(folded.weights.map((w) => w.name)).toContain('b1.folded_bias');
    expect(readOnnxModel(folded.source.bytes).network.length).toBe(folded.network.length);
  });

  it('Gemm (transB = 1, with C) + BN and Gemm (transB = 0, beta = 2, no C) + BN', async () => {
    const spec: ModelSpec = {
      inputs: [{ name: 'x', dims: ['N', 6] }], outputs: [{ name: 'y' }],
      initializers: [init('w0', [10, 6], 81), init('c0', [10], 82), ...bnInits('bn0', 10, 83), init('w1', [10, 7], 87), ...bnInits('bn1', 7, 88), init('w2', [3, 7], 92)],
      nodes: [
        { op: 'Gemm', inputs: ['x', 'w0', 'c0'], outputs: ['g0'], attrs: { transB: { i: 1 } } }, bn('bn0', 'g0', 'n0'), { op: 'Relu', inputs: ['n0'], outputs: ['r0'] },
        { op: 'Gemm', inputs: ['r0', 'w1'], outputs: ['g1'], attrs: { beta: { f: 2 } } }, bn('bn1', 'g1', 'n1'), { op: 'Relu', inputs: ['n1'], outputs: ['r1'] },
        { op: 'Gemm', inputs: ['r1', 'w2'], outputs: ['y'], attrs: { transB: { i: 1 } } },
      ],
    };
    const folded = await foldsExactly(spec, [6], 2);
    expect(folded.network.filter((l) => l.kind === 'dense')).toHaveLength(3);
  });

  it('a BN whose input is read elsewhere too stays', () => {
    const spec = torchConvNet();
    spec.outputs.push({ name: 'c1' });
    const { folded } = foldOnnxBatchNorm(readOnnxModel(buildOnnx(spec).bytes));
    expect(folded).toEqual([]);
  });
});
