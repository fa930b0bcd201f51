/**
 * ONNX Conv with 1 < group < channels (ResNeXt-style grouped convolution) maps to a conv2d 'oihw' with
 * `groups`: nothing is cut, enorm's own forward pass equals onnxruntime's, and the balanced file,
 * run in onnxruntime-web, gives the same outputs (1e-4) with lower energy, only the rescaled
 * tensors' bytes changed.
 */
import { describe, expect, it } from 'vitest';
import { balance } from '../../../src/index.js';
import { readOnnxModel, writeOnnxModel } from '../../../src/model-io/onnx/index.js';
import { forward } from '../../../src/network/forward.js';
import type { Conv2DLayer } from '../../../src/network/layers.js';
import { mulberry32 } from '../../../src/network/random.js';
import { buildOnnx, groupedConvNet, init } from '../../helpers/onnx-builder.js';
import { bytesOutside, patchedRanges, relativeDeviation, run } from '../../helpers/onnx-run.js';

const SHAPE = [4, 6, 6];

/** The inputs `run` feeds onnxruntime (onnx-run.ts: batch 4, uniform in [-1, 1) from mulberry32(seed)). */
function runInputs(seed = 7): Float32Array {
  const rnd = mulberry32(seed);
  return Float32Array.from({ length: 4 * SHAPE.reduce((a, b) => a * b, 1) }, () => rnd() * 2 - 1);
}

describe('ONNX grouped Conv', () => {
  it.each([2, 3])('group %i: a conv2d with groups, enorm forward = onnxruntime, balanced file keeps the function and lowers the energy', async (group) => {
    const { bytes } = buildOnnx(groupedConvNet(group));
    const model = readOnnxModel(bytes);
    expect(model.barriers).toEqual([]);
    const layer = model.network.find((l) => l.kind === 'conv2d' && l.groups !== undefined) as Conv2DLayer;
    expect(layer).toMatchObject({ kind: 'conv2d', layout: 'oihw', groups: group, shape: [6, 6 / group, 3, 3] });
    expect(model.weights.map((w) => w.name)).toEqual(['conv1.weight', 'conv1.bias', 'grouped.weight', 'grouped.bias', 'head.weight', 'head.bias']);

    const before = await run(bytes, SHAPE);
    const [ours] = forward(model.network, [runInputs()], { batch: 4, inputShapes: [SHAPE] });
    expect(relativeDeviation(before, Float32Array.from(ours))).toBeLessThan(1e-5);

    const grouped = Float32Array.from(layer.weight);
    const report = await balance(model.network, { backend: 'js' });
    expect(report.groups).toBe(2);
    expect(report.energyAfter).toBeLessThan(report.energyBefore * 0.99);
    expect(layer.weight).not.toEqual(grouped);
    const out = writeOnnxModel(model);
    expect(relativeDeviation(before, await run(out, SHAPE))).toBeLessThan(1e-4);
    expect(bytesOutside(bytes, out, patchedRanges(model))).toBe(0);
  });

  it('a Conv whose output channels are not divisible by its group is still cut, and reported', () => {
    const spec = groupedConvNet(2);
    spec.initializers = spec.initializers!.map((t) => (t.name === 'grouped.weight' ? init('grouped.weight', [5, 3, 3, 3], 83) : t.name === 'grouped.bias' ? init('grouped.bias', [5], 84) : t));
    spec.initializers = spec.initializers.map((t) => (t.name === 'head.weight' ? init('head.weight', [3, 5, 1, 1], 85) : t));
    const model = readOnnxModel(buildOnnx(spec).bytes);
    expect(model.barriers).toEqual([expect.objectContaining({ op: 'Conv', reason: expect.stringMatching(/grouped Conv \(group 2, 5 output channels\) is not rescaled/) })]);
    expect(model.weights.map((w) => w.name)).not.toContain('grouped.weight');
  });
});
