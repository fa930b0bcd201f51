/**
 * ONNX round trips through onnxruntime-web: read -> balance -> write, then the original and the
 * balanced file run on the same random inputs. Outputs agree to 1e-4 (relative to the largest
 * output), the energy drops, and only the rescaled tensors' bytes differ.
 */
import { describe, expect, it } from 'vitest';
import { balance } from '../../../src/index.js';
import { encodeOnnxModel, readOnnxModel, writeOnnxModel } from '../../../src/model-io/onnx/index.js';
import { buildOnnx, init, ModelProto, torchConvNet, torchMlp, tfMlp, type ModelSpec } from '../../helpers/onnx-builder.js';
import { bytesOutside, patchedRanges, relativeDeviation, run } from '../../helpers/onnx-run.js';

async function roundTrip(spec: ModelSpec, shape: number[], tolerance = 1e-4) {
  const { bytes } = buildOnnx(spec);
  const model = readOnnxModel(bytes);
  const before = await run(bytes, shape);
  const report = await balance(model.network, { backend: 'js' });
  const out = writeOnnxModel(model);
  const after = await run(out, shape);
  expect(relativeDeviation(before, after)).toBeLessThan(tolerance);
  expect(report.energyAfter).toBeLessThan(report.energyBefore * 0.99);
  expect(bytesOutside(bytes, out, patchedRanges(model))).toBe(0);
  expect(Buffer.compare(Buffer.from(bytes), Buffer.from(out))).not.toBe(0);
  return { model, report, bytes, out };
}

describe('ONNX round trip through onnxruntime-web', () => {
  it('PyTorch-style MLP (Gemm transB=1): same outputs, lower energy, only weight bytes changed', async () => {
    const { model } = await roundTrip(torchMlp(), [8]);
    expect(model.network.map((l) => l.kind)).toEqual(['input', 'dense', 'relu', 'dense', 'identity']);
    expect(model.weights.map((w) => w.name)).toEqual(['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias']);
    expect(model.inputShape).toEqual([8]);
  });

  it('TF-style MLP (MatMul io + Add bias, LeakyRelu): the Add becomes the dense bias', async () => {
    const { model } = await roundTrip(tfMlp(), [6]);
    const dense = model.network.filter((l) => l.kind === 'dense');
    expect(dense.map((l) => (l as { layout?: string }).layout)).toEqual(['io', 'io']);
    expect(dense.every((l) => (l as { bias?: Float32Array }).bias?.length)).toBe(true);
  });

  it('PyTorch-style conv net (Conv+BN+Relu, depthwise, residual Add, MaxPool, Flatten)', async () => {
    const { model } = await roundTrip(torchConvNet(), [3, 8, 8]);
    const kinds = model.network.map((l) => l.kind);
    expect(kinds).toContain('depthwise-conv2d');
    expect(kinds).toContain('batch-norm');
    expect(kinds).toContain('add');
    expect(model.barriers).toEqual([]);
  });

  it('float_data and Constant-node weights are rescaled in place too', async () => {
    const spec = torchMlp({ storage: 'float_data' });
    const [w1, b1] = spec.initializers!.splice(0, 2);
    spec.nodes.unshift({ op: 'Constant', inputs: [], outputs: ['fc1.weight'], attrs: { value: { t: w1 } } });
    spec.nodes.unshift({ op: 'Constant', inputs: [], outputs: ['fc1.bias'], attrs: { value: { t: { ...b1, storage: 'raw' } } } });
    const { model } = await roundTrip(spec, [8]);
    expect(model.weights.map((w) => w.name).sort()).toEqual(['fc1.bias', 'fc1.weight', 'fc2.bias', 'fc2.weight']);
  });

  it('external data: the changed tensors are written into a copy of the external file', async () => {
    const { bytes, external } = buildOnnx(torchMlp({ storage: 'external' }));
    const model = readOnnxModel(bytes, { externalData: external });
    const before = await run(bytes, [8], 7, external);
    await balance(model.network, { backend: 'js' });
    const written = encodeOnnxModel(model);
    expect(written.bytes).toEqual(bytes); // only external payloads change
    const file = written.external.get('weights.bin')!;
    expect(file.length).toBe(external.get('weights.bin')!.length);
    expect(file).not.toEqual(external.get('weights.bin'));
    expect(relativeDeviation(before, await run(written.bytes, [8], 7, written.external))).toBeLessThan(1e-4);
  });
});

describe('what the writer keeps', () => {
  it('doc strings, metadata, value_info, opset and names decode the same; only raw_data of the weights differs', async () => {
    const spec = { ...torchMlp(), docString: 'exported for a test', metadata: { author: 'enorm', 'onnx.version': '1.17' }, valueInfo: [{ name: 'a1', dims: ['N', 16] }], opset: 13 };
    const { bytes, out } = await roundTrip(spec, [8]);
    const strip = (b: Uint8Array) => {
      const m = ModelProto.toObject(ModelProto.decode(b), { longs: Number, bytes: String }) as { graph: { initializer: { rawData?: string }[] } };
      m.graph.initializer.forEach((t) => { delete t.rawData; });
      return m;
    };
    expect(strip(out)).toEqual(strip(bytes));
    expect(JSON.stringify(strip(out))).toContain('exported for a test');
  });
});

describe('more ONNX ops through onnxruntime-web', () => {
  it('Gemm transB=0 with alpha and beta, PRelu with one slope, Dropout and Identity', async () => {
    const spec: ModelSpec = {
      inputs: [{ name: 'x', dims: ['N', 5] }], outputs: [{ name: 'y' }],
      initializers: [init('k0', [5, 9], 61), init('c0', [9], 62), init('k1', [9, 3], 63), init('c1', [1, 3], 64), { name: 'slope', dims: [1], data: [0.25] }],
      nodes: [
        { op: 'Gemm', inputs: ['x', 'k0', 'c0'], outputs: ['g0'], attrs: { alpha: { f: 0.5 }, beta: { f: 2 } } },
        { op: 'PRelu', inputs: ['g0', 'slope'], outputs: ['p0'] },
        { op: 'Dropout', inputs: ['p0'], outputs: ['d0'] },
        { op: 'Identity', inputs: ['d0'], outputs: ['i0'] },
        { op: 'Gemm', inputs: ['i0', 'k1', 'c1'], outputs: ['y'], attrs: { beta: { f: 3 } } },
      ],
    };
    const { model } = await roundTrip(spec, [5]);
    expect(model.network.map((l) => l.kind)).toEqual(['input', 'dense', 'leaky-relu', 'dropout', 'identity', 'dense', 'identity']);
    expect(model.barriers).toEqual([]);
  });

  it('Conv + Add bias (TF style), AveragePool, Concat on channels, GlobalAveragePool, Reshape [0, -1], MatMul with the bias first', async () => {
    const spec: ModelSpec = {
      inputs: [{ name: 'x', dims: ['N', 2, 6, 6] }], outputs: [{ name: 'y' }],
      initializers: [
        init('wa', [4, 2, 3, 3], 71), init('ba', [1, 4, 1, 1], 72), init('wb', [3, 2, 1, 1], 73), init('bb', [3], 74),
        init('wc', [5, 7, 1, 1], 75), init('bc', [5], 76), init('wd', [5, 2], 77), init('bd', [2], 78),
        { name: 'shape', dims: [2], data: [0, -1], type: 'int64' },
      ],
      nodes: [
        { op: 'Conv', inputs: ['x', 'wa'], outputs: ['ca'], attrs: { pads: { ints: [1, 1, 1, 1] } } },
        { op: 'Add', inputs: ['ca', 'ba'], outputs: ['za'] },
        { op: 'Relu', inputs: ['za'], outputs: ['ra'] },
        { op: 'Conv', inputs: ['x', 'wb', 'bb'], outputs: ['cb'] },
        { op: 'Relu', inputs: ['cb'], outputs: ['rb'] },
        { op: 'Concat', inputs: ['ra', 'rb'], outputs: ['cat'], attrs: { axis: { i: 1 } } },
        { op: 'AveragePool', inputs: ['cat'], outputs: ['ap'], attrs: { kernel_shape: { ints: [2, 2] }, strides: { ints: [2, 2] } } },
        { op: 'Conv', inputs: ['ap', 'wc', 'bc'], outputs: ['cc'] },
        { op: 'Relu', inputs: ['cc'], outputs: ['rc'] },
        { op: 'GlobalAveragePool', inputs: ['rc'], outputs: ['gap'] },
        { op: 'Reshape', inputs: ['gap', 'shape'], outputs: ['flat'] },
        { op: 'MatMul', inputs: ['flat', 'wd'], outputs: ['md'] },
        { op: 'Add', inputs: ['bd', 'md'], outputs: ['y'] },
      ],
    };
    const { model } = await roundTrip(spec, [2, 6, 6]);
    expect(model.barriers).toEqual([]);
    expect(model.weights.map((w) => w.name)).toEqual(['wa', 'ba', 'wb', 'bb', 'wc', 'bc', 'wd', 'bd']);
    expect(model.network.map((l) => l.kind)).toEqual(['input', 'conv2d', 'relu', 'conv2d', 'relu', 'concat', 'avg-pool', 'conv2d', 'relu', 'global-avg-pool', 'flatten', 'dense', 'identity']);
  });
});
