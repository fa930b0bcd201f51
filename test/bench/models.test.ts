// The experiments' nets are seeded in every layer, seed 0 (the lr searches') included: tfjs reads
// an initializer seed of 0 as none and draws from Math.random.
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { convNet, fcNet, initSeed } from '../../bench/experiments/models.js';

const weightsOf = (model: tf.LayersModel) => {
  const values = model.weights.map((w) => Array.from(w.read().dataSync()));
  model.dispose();
  return values;
};

describe('experiment nets', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it('initSeed never gives 0, and gives every layer of seeds 0..3 its own seed', () => {
    const seeds = [0, 1, 2, 3].flatMap((s) => [...Array(16).keys(), 99, 999].map((l) => initSeed(s, l)));
    expect(seeds).not.toContain(0);
    expect(new Set(seeds).size).toBe(seeds.length);
  });

  for (const seed of [0, 1]) {
    it(`fcNet and convNet with seed ${seed} start from the same weights every time they are built`, () => {
      const fc = () => fcNet({ depth: 2, width: 8, norm: 'bn', weightDecay: 1e-3, seed });
      expect(weightsOf(fc())).toEqual(weightsOf(fc()));
      const conv = () => convNet({ channels: [2, 2, 4], downsample: 2, norm: 'none', weightDecay: 0, bnMomentum: 0.9, seed });
      expect(weightsOf(conv())).toEqual(weightsOf(conv()));
    });
  }

  it('different seeds start from different weights in every dense layer', () => {
    const a = weightsOf(fcNet({ depth: 2, width: 8, norm: 'none', weightDecay: 0, seed: 0 }));
    const b = weightsOf(fcNet({ depth: 2, width: 8, norm: 'none', weightDecay: 0, seed: 1 }));
    a.forEach((w, i) => expect(w).not.toEqual(b[i]));
  });
});
