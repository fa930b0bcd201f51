/**
 * A Conv or pool whose window enorm's own forward pass does not reproduce (a dilation, or pads other
 * than none and TF 'same') is still rescaled, but the model says so (forwardDiffers), and the CLI
 * withholds the output SQNR it would compute with that forward pass.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main } from '../../../src/cli/main.js';
import { readOnnxModel } from '../../../src/model-io/onnx/index.js';
import { buildOnnx, torchConvNet, type ModelSpec } from '../../helpers/onnx-builder.js';

/** torchConvNet with the first Conv's attributes replaced. */
function withFirstConv(attrs: NonNullable<ModelSpec['nodes'][number]['attrs']>, input = [3, 8, 8]): ModelSpec {
  const spec = torchConvNet();
  spec.inputs = [{ name: 'input', dims: ['batch', ...input] }];
  spec.nodes[0] = { ...spec.nodes[0], attrs: { kernel_shape: { ints: [3, 3] }, ...attrs } };
  return spec;
}

describe('forwardDiffers', () => {
  it("is unset for the PyTorch-style net (stride 1, pads (k - 1) / 2: TF 'same')", () => {
    expect(readOnnxModel(buildOnnx(torchConvNet()).bytes).forwardDiffers).toBeUndefined();
  });

  it('names a dilated Conv, which is still rescaled', () => {
    const model = readOnnxModel(buildOnnx(withFirstConv({ pads: { ints: [2, 2, 2, 2] }, dilations: { ints: [2, 2] } })).bytes);
    expect(model.forwardDiffers).toMatch(/Conv .* is dilated/);
    expect(model.network.some((l) => l.kind === 'conv2d' && l.shape[1] === 3)).toBe(true);
  });

  it("names pads that are not TF 'same' for the input's size (PyTorch stride 2, padding 1 on 8 x 8), and accepts those that are", () => {
    const torch = readOnnxModel(buildOnnx(withFirstConv({ pads: { ints: [1, 1, 1, 1] }, strides: { ints: [2, 2] } }, [3, 16, 16])).bytes);
    expect(torch.forwardDiffers).toMatch(/pads \[1, 1, 1, 1\], not TF 'same'/);
    // TF 'same' for H = 16, k = 3, s = 2: total (8 - 1) * 2 + 3 - 16 = 1, so 0 before and 1 after.
    const tf = readOnnxModel(buildOnnx(withFirstConv({ pads: { ints: [0, 0, 1, 1] }, strides: { ints: [2, 2] } }, [3, 16, 16])).bytes);
    expect(tf.forwardDiffers).toBeUndefined();
  });

  it('the CLI withholds the output SQNR for such a model and still reports the weight SQNR', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'enorm-fwd-'));
    const path = join(dir, 'dilated.onnx');
    await writeFile(path, buildOnnx(withFirstConv({ pads: { ints: [2, 2, 2, 2] }, dilations: { ints: [2, 2] } })).bytes);
    let out = '';
    let err = '';
    const code = await main(['balance', path, '-o', join(dir, 'out.onnx'), '--quantize', 'int8', '--samples', '4', '--json'], { out: (t) => { out += t; }, err: (t) => { err += t; } });
    expect(err).toBe('');
    expect(code).toBe(0);
    const q = JSON.parse(out).quantization;
    expect(q.outputSqnrWithheld).toMatch(/dilated/);
    expect(q.outputSqnrBefore).toBeNull();
    expect(q.tensors.length).toBeGreaterThan(0);
    expect(q.tensors.every((t: { sqnrBefore: number | null }) => typeof t.sqnrBefore === 'number')).toBe(true);
  });
});
