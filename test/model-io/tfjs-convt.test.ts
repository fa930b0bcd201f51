/**
 * tfjs Conv2DTranspose in model files: saved by real tfjs, read as conv2d-transpose ('hwoi') layers
 * whose arrays are the manifest's, evaluated as tfjs does, balanced, written, and loaded again by
 * tfjs with the same predictions. The configurations the kind cannot express are refused.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { balance } from '../../src/engine/enorm.js';
import { ENormError } from '../../src/errors.js';
import { tfjsFormat } from '../../src/model-io/tfjs/format.js';
import { forward } from '../../src/network/forward.js';
import type { Conv2DTransposeLayer } from '../../src/network/layers.js';
import { mulberry32 } from '../../src/network/random.js';
import { maxRelDiff } from '../helpers/nets.js';
import { tempRoot } from '../helpers/temp.js';
import { loadTfjsFiles, saveTfjsFiles } from '../helpers/tfjs-save.js';

const L = tf.layers;
const root = tempRoot('enorm-convt-');
let folders = 0;
const folder = async (): Promise<string> => {
  const dir = join(root(), `m${folders++}`);
  await mkdir(dir);
  return dir;
};

/** Seeded weights whose size grows along the flat index, so that units differ and balancing has work to do. */
function seed(model: tf.LayersModel, s: number): void {
  const rng = mulberry32(s);
  model.setWeights(model.weights.map((w) => {
    const n = w.shape.reduce((x: number, y) => x * (y as number), 1);
    return tf.tensor(Float32Array.from({ length: n }, (_, i) => (2 * rng() - 1) * 0.3 * 4 ** ((i % 7) / 3)), w.shape as number[]);
  }));
}

/** A small decoder: conv -> Conv2DTranspose (stride 2, same, relu) -> Conv2DTranspose (valid, no bias) -> relu -> 1x1 conv. */
function decoder(): tf.LayersModel {
  const model = tf.sequential({ layers: [
    L.conv2d({ name: 'enc', inputShape: [4, 5, 3], filters: 4, kernelSize: 3, padding: 'same', activation: 'relu' }),
    L.conv2dTranspose({ name: 'up1', filters: 6, kernelSize: [3, 2], strides: 2, padding: 'same', activation: 'relu' }),
    L.conv2dTranspose({ name: 'up2', filters: 5, kernelSize: 3, strides: [1, 2], padding: 'valid', useBias: false }),
    L.reLU({ name: 'r' }),
    L.conv2d({ name: 'head', filters: 2, kernelSize: 1 }),
  ] });
  seed(model, 3);
  return model;
}

const predict = (model: tf.LayersModel, x: tf.Tensor): Float32Array => (model.predict(x) as tf.Tensor).dataSync() as Float32Array;

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('tfjs Conv2DTranspose', () => {
  it('is read as conv2d-transpose, evaluated as tfjs does, balanced, written and reloaded with the same predictions', async () => {
    const model = decoder();
    const x = tf.randomUniform([3, 4, 5, 3], -1, 1, 'float32', 4);
    const expected = predict(model, x);
    const read = await tfjsFormat.read(await saveTfjsFiles(model, await folder()));

    expect(read.network.map((l) => `${l.name}:${l.kind}`)).toEqual([
      'enc_input:input', 'enc:conv2d', 'enc/relu:relu', 'up1:conv2d-transpose', 'up1/relu:relu', 'up2:conv2d-transpose', 'r:relu', 'head:conv2d',
    ]);
    const up1 = read.network.find((l) => l.name === 'up1') as Conv2DTransposeLayer;
    const up2 = read.network.find((l) => l.name === 'up2') as Conv2DTransposeLayer;
    expect(up1).toMatchObject({ layout: 'hwoi', shape: [3, 2, 6, 4], strides: [2, 2], padding: 'same' });
    expect(up2).toMatchObject({ layout: 'hwoi', shape: [3, 3, 5, 6], strides: [1, 2], padding: 'valid' });
    expect(up1.bias).toHaveLength(6);
    expect(up2.bias).toBeUndefined();
    // The layer holds the manifest's arrays: balancing it in place changes what is written.
    expect(read.weights.find((w) => w.name === 'up1/kernel')?.data).toBe(up1.weight);
    expect(maxRelDiff(forward(read.network, [x.dataSync()], { batch: 3 })[0], expected)).toBeLessThan(1e-5);

    const kernel = Float32Array.from(up1.weight);
    const report = await balance(read.network, { tolerance: 1e-10, maxCycles: 300 });
    expect(report.energyAfter).toBeLessThan(0.95 * report.energyBefore);
    expect(maxRelDiff(up1.weight, kernel)).toBeGreaterThan(1e-3);

    const out = await folder();
    await tfjsFormat.write(read, out);
    const reloaded = await loadTfjsFiles(out);
    expect(reloaded.layers.map((l) => l.getClassName())).toEqual(['Conv2D', 'Conv2DTranspose', 'Conv2DTranspose', 'ReLU', 'Conv2D']);
    expect(maxRelDiff(predict(reloaded, x), expected)).toBeLessThan(1e-4);
  });

  it("'valid' padding with a kernel smaller than its stride is E_LAYER_KIND naming the layer (tfjs pads that output)", async () => {
    const model = tf.sequential({ layers: [L.conv2dTranspose({ name: 'up', inputShape: [3, 3, 2], filters: 2, kernelSize: [1, 3], strides: 2, padding: 'valid' })] });
    const path = await saveTfjsFiles(model, await folder());
    let err: unknown;
    try {
      await tfjsFormat.read(path);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ENormError);
    expect((err as ENormError).code).toBe('E_LAYER_KIND');
    expect((err as ENormError).message).toMatch(/layer 'up' \(Conv2DTranspose\): unsupported 'valid' padding with a 1x3 kernel smaller than its strides \[2, 2\]/);
  });
});
