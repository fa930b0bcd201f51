/** `enorm balance --fold-bn` on a real tfjs model: the BN layer is gone, tfjs loads the result, the predictions hold. */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { main, type CliReport } from '../../src/cli/main.js';

async function cli(args: string[]) {
  let out = '';
  let err = '';
  const code = await main(args, { out: (t) => { out += t; }, err: (t) => { err += t; } });
  return { code, out, err };
}

/** conv (linear) -> BN (trained-looking statistics) -> relu -> flatten -> dense, saved as model.json + weights.bin. */
async function convBnModel(dir: string): Promise<tf.LayersModel> {
  const model = tf.sequential({ layers: [
    tf.layers.conv2d({ name: 'conv', inputShape: [6, 6, 2], filters: 3, kernelSize: 3, padding: 'same', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }),
    tf.layers.batchNormalization({ name: 'bn' }),
    tf.layers.reLU({ name: 'relu' }),
    tf.layers.flatten({ name: 'flat' }),
    tf.layers.dense({ name: 'fc', units: 4, kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
  ] });
  const bn = model.getLayer('bn');
  bn.setWeights([tf.tensor1d([1.5, 0.5, 2]), tf.tensor1d([0.1, -0.2, 0.3]), tf.tensor1d([0.05, -0.1, 0.2]), tf.tensor1d([0.5, 2, 1.2])]);
  await model.save(tf.io.withSaveHandler(async (a) => {
    await writeFile(join(dir, 'model.json'), JSON.stringify({ format: 'layers-model', modelTopology: a.modelTopology, weightsManifest: [{ paths: ['weights.bin'], weights: a.weightSpecs }] }));
    await writeFile(join(dir, 'weights.bin'), new Uint8Array(a.weightData as ArrayBuffer));
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  return model;
}

async function load(dir: string): Promise<tf.LayersModel> {
  const json = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8'));
  const bytes = Buffer.concat(await Promise.all(json.weightsManifest.flatMap((g: { paths: string[] }) => g.paths.map((p) => readFile(join(dir, p))))));
  return tf.loadLayersModel(tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: json.weightsManifest.flatMap((g: { weights: unknown[] }) => g.weights), weightData: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) }));
}

beforeAll(async () => { await tf.setBackend('cpu'); });

describe('enorm balance --fold-bn (tfjs)', () => {
  it('folds the BN into the conv, balances, and writes a model without it that predicts the same', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'enorm-fold-'));
    const original = await convBnModel(dir);
    const out = join(dir, 'folded');
    const r = await cli(['balance', join(dir, 'model.json'), '-o', out, '--fold-bn', '--json', '--quantize', 'int8', '--samples', '8']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.out) as CliReport;
    expect(report.foldedBatchNorms).toBe(1);
    expect(report.layers.map((l) => l.kind)).toEqual(['conv2d', 'dense']);
    expect(report.outputDeviation.relative).toBeLessThan(1e-4);
    const folded = await load(out);
    expect(folded.layers.map((l) => l.getClassName())).not.toContain('BatchNormalization');
    const x = tf.randomUniform([5, 6, 6, 2], 0, 1, 'float32', 3);
    const a = Array.from((original.predict(x) as tf.Tensor).dataSync());
    const b = Array.from((folded.predict(x) as tf.Tensor).dataSync());
    const scale = a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    a.forEach((v, i) => expect(Math.abs(v - b[i]) / scale).toBeLessThan(1e-4));
  });
});
