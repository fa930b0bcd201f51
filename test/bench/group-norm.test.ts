import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { GroupNormalization, groupNormalization } from '../../bench/experiments/group-norm.js';
import { mulberry32 } from '../../src/network/random.js';
import { maxRelDiff } from '../helpers/nets.js';
import { randomFloat32 } from '../helpers/random.js';

/** Group norm in float64 for x [N, S, C] (S = product of spatial axes), gamma and beta per channel. */
function naive(x: Float32Array, n: number, s: number, c: number, groups: number, gamma: number[], beta: number[], eps: number): Float64Array {
  const out = new Float64Array(x.length);
  const per = c / groups;
  for (let b = 0; b < n; b++)
    for (let g = 0; g < groups; g++) {
      const idx: number[] = [];
      for (let p = 0; p < s; p++) for (let k = 0; k < per; k++) idx.push((b * s + p) * c + g * per + k);
      const mean = idx.reduce((a, i) => a + x[i], 0) / idx.length;
      const variance = idx.reduce((a, i) => a + (x[i] - mean) ** 2, 0) / idx.length;
      for (const i of idx) out[i] = ((x[i] - mean) / Math.sqrt(variance + eps)) * gamma[i % c] + beta[i % c];
    }
  return out;
}

describe('GroupNormalization layer', () => {
  beforeAll(() => tf.setBackend('cpu'));

  it.each([
    { shape: [3, 5, 4, 6], groups: 2 },
    { shape: [2, 7, 8], groups: 4 },
    { shape: [4, 12], groups: 3 },
    { shape: [2, 3, 3, 6], groups: 1 }, // layer norm over (H, W, C)
    { shape: [2, 3, 3, 6], groups: 6 }, // instance norm
  ])('matches float64 group norm for input $shape and $groups groups', async ({ shape, groups }) => {
    const rng = mulberry32(shape.length * 10 + groups);
    const c = shape[shape.length - 1];
    const layer = groupNormalization({ groups, inputShape: shape.slice(1) });
    const model = tf.sequential({ layers: [layer] });
    const gamma = Array.from({ length: c }, () => 0.5 + rng());
    const beta = Array.from({ length: c }, () => rng() - 0.5);
    model.setWeights([tf.tensor1d(gamma), tf.tensor1d(beta)]);
    const x = randomFloat32(shape.reduce((a, b) => a * b, 1), rng, 3).map((v, i) => v + (i % c)); // channel offsets
    const y = await (model.predict(tf.tensor(x, shape)) as tf.Tensor).data();
    const s = shape.slice(1, -1).reduce((a, b) => a * b, 1);
    expect(maxRelDiff(y, naive(x, shape[0], s, c, groups, gamma, beta, 1e-5))).toBeLessThan(1e-5);
  });

  it('an example\'s output does not depend on the rest of the batch (unlike batch norm)', async () => {
    const layer = groupNormalization({ groups: 2, inputShape: [4, 4, 4] });
    const model = tf.sequential({ layers: [layer] });
    const rng = mulberry32(3);
    const a = tf.tensor(randomFloat32(64, rng), [1, 4, 4, 4]);
    const b = tf.tensor(randomFloat32(3 * 64, rng, 10), [3, 4, 4, 4]);
    const alone = await (model.predict(a) as tf.Tensor).data();
    const batched = await (model.predict(tf.concat([a, b])) as tf.Tensor).data();
    expect(Array.from(batched.subarray(0, 64))).toEqual(Array.from(alone));
  });

  it('trains: gamma and beta get gradients and the loss goes down', async () => {
    const model = tf.sequential({
      layers: [
        tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', inputShape: [6, 6, 1], kernelInitializer: tf.initializers.heNormal({ seed: 1 }) }),
        groupNormalization({ groups: 2 }),
        tf.layers.reLU(),
        tf.layers.flatten(),
        tf.layers.dense({ units: 2, kernelInitializer: tf.initializers.heNormal({ seed: 2 }) }),
      ],
    });
    model.compile({ optimizer: tf.train.sgd(0.05), loss: 'meanSquaredError' });
    const x = tf.randomNormal([16, 6, 6, 1], 0, 1, 'float32', 4);
    const y = tf.randomNormal([16, 2], 0, 1, 'float32', 5);
    const gammaBefore = await model.layers[1].getWeights()[0].data();
    const first = (await model.fit(x, y, { epochs: 1, batchSize: 16, verbose: 0 })).history.loss[0] as number;
    const last = (await model.fit(x, y, { epochs: 30, batchSize: 16, verbose: 0 })).history.loss.at(-1) as number;
    expect(last).toBeLessThan(0.8 * first);
    const gammaAfter = await model.layers[1].getWeights()[0].data();
    expect(maxRelDiff(gammaAfter, gammaBefore)).toBeGreaterThan(1e-3);
  });

  it('serialises: a model round-trips through toJSON and its registered class', async () => {
    const model = tf.sequential({ layers: [groupNormalization({ groups: 3, epsilon: 1e-3, inputShape: [2, 2, 6], name: 'gn' })] });
    const json = model.toJSON(null, false) as unknown as { config: { layers: { class_name: string; config: Record<string, unknown> }[] } };
    const entry = json.config.layers[0];
    expect(entry.class_name).toBe('GroupNormalization');
    expect(entry.config).toMatchObject({ groups: 3, epsilon: 1e-3, scale: true, center: true, name: 'gn' });
    const [cls, fromConfig] = tf.serialization.SerializationMap.getMap().classNameMap.GroupNormalization;
    const copy = fromConfig(cls, { ...entry.config } as tf.serialization.ConfigDict) as unknown as GroupNormalization;
    expect(copy).toBeInstanceOf(GroupNormalization);
    expect([copy.groups, copy.epsilon]).toEqual([3, 1e-3]);
  });

  it('refuses channel counts that do not split into the groups, and bad group counts', () => {
    expect(() => tf.sequential({ layers: [groupNormalization({ groups: 4, inputShape: [3, 3, 6], name: 'gn_bad' })] })).toThrow(/'gn_bad': 6 channels do not split into 4 groups/);
    expect(() => groupNormalization({ groups: 0 })).toThrow(RangeError);
  });
});
