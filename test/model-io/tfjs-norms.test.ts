/**
 * tfjs LayerNormalization and PReLU in model files: saved by real tfjs, parsed into layer-norm and
 * per-channel leaky-relu layers, evaluated like tfjs, balanced, written, and loaded again by tfjs
 * with the same predictions. PReLU slopes are read, never rescaled.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { balance } from '../../src/engine/enorm.js';
import { ENormError } from '../../src/errors.js';
import { parseTfjsModel, serializeTfjsModel } from '../../src/model-io/tfjs/index.js';
import { forward } from '../../src/network/forward.js';
import { mulberry32 } from '../../src/network/random.js';
import { tfjsArtifacts } from '../helpers/tfjs-save.js';

const L = tf.layers;

const save = tfjsArtifacts;

/** Seeded weights, with output units of very different sizes so that balancing has work to do. */
function seed(model: tf.LayersModel, s: number): void {
  const rng = mulberry32(s);
  model.setWeights(model.weights.map((w) => {
    const n = w.shape.reduce((x: number, y) => x * (y as number), 1);
    const units = w.shape[w.shape.length - 1] as number;
    return tf.tensor(Float32Array.from({ length: n }, (_, i) => (2 * rng() - 1) * 0.2 * 3 ** (i % units)), w.shape as number[]);
  }));
}

function mlp(): tf.LayersModel {
  return tf.sequential({ layers: [
    L.dense({ name: 'd1', inputShape: [5], units: 6 }),
    L.layerNormalization({ name: 'ln', epsilon: 1e-5 }),
    L.reLU({ name: 'r' }),
    L.dense({ name: 'd2', units: 4 }),
    L.prelu({ name: 'pr' }),
    L.dense({ name: 'd3', units: 3 }),
  ] });
}

function convNet(): tf.LayersModel {
  return tf.sequential({ layers: [
    L.conv2d({ name: 'c1', inputShape: [4, 4, 2], filters: 3, kernelSize: 3, padding: 'same' }),
    L.prelu({ name: 'pr', sharedAxes: [1, 2] }),
    L.conv2d({ name: 'c2', filters: 5, kernelSize: 1 }),
    L.layerNormalization({ name: 'ln' }),
    L.globalAveragePooling2d({ name: 'gap' }),
    L.dense({ name: 'fc', units: 2 }),
  ] });
}

async function reload(modelJson: object, weightData: ArrayBuffer): Promise<tf.LayersModel> {
  const j = JSON.parse(JSON.stringify(modelJson));
  return tf.loadLayersModel(tf.io.fromMemory({ modelTopology: j.modelTopology, weightSpecs: j.weightsManifest[0].weights, weightData }));
}

function relDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / den;
}

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('tfjs LayerNormalization and PReLU', () => {
  const cases: [string, () => tf.LayersModel, number[], string[]][] = [
    ['dense MLP', mlp, [5], ['d1_input:input', 'd1:dense', 'ln:layer-norm', 'r:relu', 'd2:dense', 'pr:leaky-relu', 'd3:dense']],
    ['conv net, PReLU shared over space', convNet, [4, 4, 2], ['c1_input:input', 'c1:conv2d', 'pr:leaky-relu', 'c2:conv2d', 'ln:layer-norm', 'gap:global-avg-pool', 'fc:dense']],
  ];
  it.each(cases)('%s: parsed, evaluated as tfjs does, balanced and reloaded with the same predictions', async (_name, build, shape, kinds) => {
    const model = build();
    seed(model, 5);
    const saved = await save(model);
    const parsed = parseTfjsModel(saved.modelJson, saved.weightData);
    expect(parsed.network.map((l) => `${l.name}:${l.kind}`)).toEqual(kinds);
    const x = tf.randomUniform([3, ...shape], -1, 1, 'float32', 4);
    const expected = (model.predict(x) as tf.Tensor).dataSync();
    expect(relDiff(forward(parsed.network, [x.dataSync()], { batch: 3 })[0], expected)).toBeLessThan(1e-5);

    const pr = parsed.network.find((l) => l.name === 'pr') as { alpha: Float32Array };
    expect(pr.alpha).toBeInstanceOf(Float32Array);
    const slopes = Float32Array.from(pr.alpha);
    const ln = parsed.network.find((l) => l.name === 'ln') as { gamma: Float32Array };
    const gamma = Float32Array.from(ln.gamma);
    const report = await balance(parsed.network, { tolerance: 1e-10, maxCycles: 300 });
    expect(report.energyAfter).toBeLessThan(0.95 * report.energyBefore);
    expect(Array.from(pr.alpha)).toEqual(Array.from(slopes));
    expect(relDiff(ln.gamma, gamma)).toBeGreaterThan(1e-3);

    const { modelJson, weightData } = serializeTfjsModel(parsed);
    const reloaded = await reload(modelJson, weightData);
    expect(relDiff((reloaded.predict(x) as tf.Tensor).dataSync(), expected)).toBeLessThan(1e-4);
  });

  it('PReLU with a slope per position, or LayerNormalization over other axes, is E_LAYER_KIND naming the layer', async () => {
    const perPosition = tf.sequential({ layers: [L.conv2d({ name: 'c', inputShape: [3, 3, 2], filters: 2, kernelSize: 1 }), L.prelu({ name: 'pr' })] });
    const spatialLn = tf.sequential({ layers: [L.conv2d({ name: 'c', inputShape: [3, 3, 2], filters: 2, kernelSize: 1 }), L.layerNormalization({ name: 'ln', axis: [1, 2, 3] })] });
    for (const [model, pattern] of [
      [perPosition, /layer 'pr' \(PReLU\): unsupported alpha of shape \[3, 3, 2\]/],
      [spatialLn, /layer 'ln' \(LayerNormalization\): unsupported axis/],
    ] as [tf.LayersModel, RegExp][]) {
      const saved = await save(model);
      let err: unknown;
      try {
        parseTfjsModel(saved.modelJson, saved.weightData);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ENormError);
      expect((err as ENormError).code).toBe('E_LAYER_KIND');
      expect((err as ENormError).message).toMatch(pattern);
    }
  });
});
