/**
 * tfjs batch-norm folding (`--fold-bn`): models built and saved by real tfjs, folded through the
 * format entry, written, and loaded again by tf.loadLayersModel. The folded model has no
 * BatchNormalization after a linear Dense / Conv2D / DepthwiseConv2D, gives the original's
 * predictions, and still balances (the function kept through the write).
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { balance } from '../../src/engine/enorm.js';
import { tfjsFormat } from '../../src/model-io/tfjs/format.js';
import { foldTfjsBatchNorm } from '../../src/model-io/tfjs/fold.js';
import type { TfjsModel } from '../../src/model-io/tfjs/index.js';
import { mulberry32 } from '../../src/network/random.js';
import { tfjsArtifacts } from '../helpers/tfjs-save.js';

const L = tf.layers;
type Built = { model: tf.LayersModel; shape: number[] };

/** Seeded weights; BN variances and gammas positive, means and betas far from 0 so that folding is visible. */
function seed(model: tf.LayersModel, s: number): void {
  const rng = mulberry32(s);
  model.setWeights(model.weights.map((w) => {
    const n = w.shape.reduce((x: number, y) => x * (y as number), 1);
    const positive = /moving_variance|gamma/.test(w.originalName);
    return tf.tensor(Float32Array.from({ length: n }, () => (positive ? 0.3 + 2 * rng() : 2 * rng() - 1)), w.shape as number[]);
  }));
}

/** Sequential: conv (no bias) -> BN -> relu -> depthwise -> BN -> relu -> GAP -> dense -> BN (the output). */
function sequentialNet(): Built {
  const model = tf.sequential({ name: 'seq_bn', layers: [
    L.conv2d({ name: 'conv', inputShape: [6, 6, 3], filters: 5, kernelSize: 3, padding: 'same', useBias: false }),
    L.batchNormalization({ name: 'bn1', epsilon: 1e-3 }),
    L.reLU({ name: 'r1' }),
    L.depthwiseConv2d({ name: 'dw', kernelSize: 3, depthMultiplier: 2, padding: 'valid' }),
    L.batchNormalization({ name: 'bn2', epsilon: 0.01 }),
    L.reLU({ name: 'r2' }),
    L.globalAveragePooling2d({ name: 'gap' }),
    L.dense({ name: 'fc', units: 4 }),
    L.batchNormalization({ name: 'bn3' }),
  ] });
  seed(model, 7);
  return { model, shape: [6, 6, 3] };
}

/**
 * Functional: a residual block with BN after each conv, a BN after a relu conv (stays), a conv read by
 * a BN and by the add (stays), a dense head whose BN is a model output next to another output.
 */
function functionalNet(): Built {
  const input = tf.input({ shape: [5, 5, 4], name: 'image' });
  const apply = (layer: tf.layers.Layer, x: tf.SymbolicTensor | tf.SymbolicTensor[]) => layer.apply(x) as tf.SymbolicTensor;
  const c1 = apply(L.conv2d({ name: 'c1', filters: 4, kernelSize: 3, padding: 'same' }), input);
  const b1 = apply(L.batchNormalization({ name: 'b1' }), c1);
  const r1 = apply(L.reLU({ name: 'r1' }), b1);
  const c2 = apply(L.conv2d({ name: 'c2', filters: 4, kernelSize: 1, useBias: false }), r1);
  const b2 = apply(L.batchNormalization({ name: 'b2', scale: false }), c2);
  const sum = apply(L.add({ name: 'sum' }), [b2, r1]);
  const c3 = apply(L.conv2d({ name: 'c3', filters: 4, kernelSize: 1, activation: 'relu' }), sum);
  const b3 = apply(L.batchNormalization({ name: 'b3' }), c3); // after an activation: not foldable
  const c4 = apply(L.conv2d({ name: 'c4', filters: 4, kernelSize: 1 }), b3);
  const b4 = apply(L.batchNormalization({ name: 'b4' }), c4); // c4 is also read by the add: not foldable
  const sum2 = apply(L.add({ name: 'sum2' }), [b4, c4]);
  const gap = apply(L.globalAveragePooling2d({ name: 'gap' }), sum2);
  const fc = apply(L.dense({ name: 'fc', units: 3 }), gap);
  const head = apply(L.batchNormalization({ name: 'head_bn', center: false }), fc);
  const aux = apply(L.dense({ name: 'aux', units: 2 }), gap);
  const model = tf.model({ inputs: input, outputs: [head, aux], name: 'func_bn' });
  seed(model, 8);
  return { model, shape: [5, 5, 4] };
}

type Saved = Awaited<ReturnType<typeof tfjsArtifacts>>;

const save = tfjsArtifacts;

/** Writes the model with the format's writer, reads the files back and loads them in tfjs. */
async function writeAndLoad(model: TfjsModel): Promise<{ loaded: tf.LayersModel; modelJson: Record<string, any> }> {
  const dir = await mkdtemp(join(tmpdir(), 'enorm-fold-'));
  await tfjsFormat.write(model, dir);
  const modelJson = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8'));
  const bytes = await readFile(join(dir, modelJson.weightsManifest[0].paths[0]));
  const weightData = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  const loaded = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: modelJson.modelTopology, weightSpecs: modelJson.weightsManifest[0].weights, weightData }));
  return { loaded, modelJson };
}

async function readWithFormat(saved: Saved): Promise<TfjsModel> {
  const dir = await mkdtemp(join(tmpdir(), 'enorm-fold-in-'));
  await writeFile(join(dir, 'model.json'), JSON.stringify(saved.modelJson));
  await writeFile(join(dir, 'weights.bin'), new Uint8Array(saved.weightData));
  return tfjsFormat.read(join(dir, 'model.json'));
}

function outputs(model: tf.LayersModel, x: tf.Tensor): Float32Array[] {
  const y = model.predict(x);
  return ([] as tf.Tensor[]).concat(y).map((t) => t.dataSync() as Float32Array);
}

/** max |a - b| / max |b| over all outputs. */
function relDiff(a: Float32Array[], b: Float32Array[]): number {
  let num = 0;
  let den = 0;
  a.forEach((t, k) => t.forEach((v, i) => {
    num = Math.max(num, Math.abs(v - b[k][i]));
    den = Math.max(den, Math.abs(b[k][i]));
  }));
  return num / den;
}

const layerNames = (modelJson: Record<string, any>): string[] => {
  const t = modelJson.modelTopology.model_config ?? modelJson.modelTopology;
  return (Array.isArray(t.config) ? t.config : t.config.layers).map((l: any) => l.config.name);
};
const manifestNames = (modelJson: Record<string, any>): string[] => modelJson.weightsManifest[0].weights.map((w: { name: string }) => w.name);

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('tfjs --fold-bn', () => {
  const cases: [string, () => Built, string[], string[]][] = [
    ['sequential conv / depthwise / dense', sequentialNet, ['bn1', 'bn2', 'bn3'], []],
    ['functional residual, two outputs', functionalNet, ['b1', 'b2', 'head_bn'], ['b3', 'b4']],
  ];

  it.each(cases)('%s: the BN layers are gone, tfjs loads the written model and predicts the same', async (_name, build, folded, kept) => {
    const { model, shape } = build();
    const saved = await save(model);
    const original = await readWithFormat(saved);
    const x = tf.randomUniform([4, ...shape], -1, 1, 'float32', 3);
    const expected = outputs(model, x);

    const foldedModel = tfjsFormat.foldBatchNorm!(original);
    const { loaded, modelJson } = await writeAndLoad(foldedModel);
    const names = layerNames(modelJson);
    for (const n of folded) expect(names).not.toContain(n);
    for (const n of kept) expect(names).toContain(n);
    expect(loaded.layers.filter((l) => l.getClassName() === 'BatchNormalization').map((l) => l.name)).toEqual(kept);
    expect(manifestNames(modelJson).filter((w) => folded.some((n) => w.startsWith(`${n}/`)))).toEqual([]);
    expect(foldedModel.network.some((l) => folded.includes(l.name ?? ''))).toBe(false);
    expect(relDiff(outputs(loaded, x), expected)).toBeLessThan(1e-4);
    // The input model is not changed: it still has its BN layers.
    expect(layerNames(serialize(original))).toEqual(expect.arrayContaining(folded));

    // Balancing acts on the folded kernels, and what is written still gives the same predictions.
    const report = await balance(foldedModel.network, { tolerance: 1e-8, maxCycles: 200 });
    expect(report.energyAfter).toBeLessThan(report.energyBefore);
    const balanced = await writeAndLoad(foldedModel);
    expect(relDiff(outputs(balanced.loaded, x), expected)).toBeLessThan(1e-4);
  });

  it('a layer without a bias gets <layer>/bias (use_bias true) right after its kernel', async () => {
    const { model } = sequentialNet();
    const folded = foldTfjsBatchNorm(await readWithFormat(await save(model)));
    const { modelJson } = await writeAndLoad(folded);
    const names = manifestNames(modelJson);
    expect(names.slice(0, 2)).toEqual(['conv/kernel', 'conv/bias']);
    expect(names).toEqual(['conv/kernel', 'conv/bias', 'dw/depthwise_kernel', 'dw/bias', 'fc/kernel', 'fc/bias']);
    const conv = modelJson.modelTopology.config.layers.find((l: any) => l.config.name === 'conv');
    expect(conv.config.use_bias).toBe(true);
    // The network's arrays are the manifest's: balancing in place changes what is written.
    const byName = new Map(folded.weights.map((w) => [w.name, w.data]));
    const net = folded.network.find((l) => l.name === 'conv') as { weight: Float32Array; bias: Float32Array };
    expect(byName.get('conv/kernel')).toBe(net.weight);
    expect(byName.get('conv/bias')).toBe(net.bias);
  });

  it("weightNames: every rescaled array with its manifest name, before and after folding", async () => {
    const parsed = await readWithFormat(await save(sequentialNet().model));
    const rows = (m: TfjsModel) => tfjsFormat.weightNames!(m).map((r) => `${r.name}=${r.layer}.${r.tensor}`);
    expect(rows(parsed)).toEqual([
      'conv/kernel=conv.weight', 'bn1/gamma=bn1.gamma', 'bn1/beta=bn1.beta', 'dw/depthwise_kernel=dw.weight', 'dw/bias=dw.bias',
      'bn2/gamma=bn2.gamma', 'bn2/beta=bn2.beta', 'fc/kernel=fc.weight', 'fc/bias=fc.bias', 'bn3/gamma=bn3.gamma', 'bn3/beta=bn3.beta',
    ]);
    const folded = tfjsFormat.foldBatchNorm!(parsed);
    expect(rows(folded)).toEqual(['conv/kernel=conv.weight', 'conv/bias=conv.bias', 'dw/depthwise_kernel=dw.weight', 'dw/bias=dw.bias', 'fc/kernel=fc.weight', 'fc/bias=fc.bias']);
    for (const r of tfjsFormat.weightNames!(folded)) expect(folded.weights.find((w) => w.name === r.name)?.data).toBe(r.data);
  });

  it('a Keras-converter topology (wrapped in model_config) folds the same and loads in tfjs', async () => {
    const { model, shape } = functionalNet();
    const saved = await save(model);
    saved.modelJson.modelTopology = { keras_version: '2.15.0', backend: 'tensorflow', model_config: saved.modelJson.modelTopology };
    const folded = foldTfjsBatchNorm(await readWithFormat(saved));
    const { loaded, modelJson } = await writeAndLoad(folded);
    expect(layerNames(modelJson)).not.toContain('b1');
    expect(modelJson.modelTopology.keras_version).toBe('2.15.0');
    const x = tf.randomUniform([2, ...shape], -1, 1, 'float32', 5);
    expect(relDiff(outputs(loaded, x), outputs(model, x))).toBeLessThan(1e-4);
  });

  it('a model with nothing to fold comes back as it was; a functional model keeps its output names in order', async () => {
    const model = tf.sequential({ layers: [L.dense({ inputShape: [3], units: 2, activation: 'relu', name: 'd' }), L.batchNormalization({ name: 'bn' })] });
    seed(model, 9);
    const parsed = await readWithFormat(await save(model));
    expect(foldTfjsBatchNorm(parsed)).toBe(parsed);
    const func = foldTfjsBatchNorm(await readWithFormat(await save(functionalNet().model)));
    expect((func.topology as any).config.output_layers.map((r: unknown[]) => r[0])).toEqual(['fc', 'aux']);
  });
});

function serialize(model: TfjsModel): Record<string, any> {
  return { modelTopology: model.topology };
}


