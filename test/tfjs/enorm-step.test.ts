import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, describe, expect, it } from 'vitest';
import { ENormError } from '../../src/errors.js';
import { ENormCallback, enormStep } from '../../src/tfjs/index.js';
import { checkNonFiniteRefused, checkOverflowRefused, checkStepPreserves, energy, maxRelDiff, mlp, MODELS, trainWithENorm, trained } from './models.js';

afterAll(() => tf.setBackend('cpu'));

describe.each(['cpu', 'wasm'])('enormStep on the tfjs %s backend', (backend) => {
  it.each(MODELS)('$name: predictions kept, energy down, weight x momentum unchanged', async ({ make, shape, conv }) => {
    await tf.setBackend(backend);
    // tfjs-backend-wasm 4.22 has no convolution gradients: conv nets are trained on cpu, then balanced on wasm
    await checkStepPreserves(make, shape, conv && backend === 'wasm' ? 'cpu' : undefined);
    expect(tf.getBackend()).toBe(backend);
  });
});

describe('enormStep', () => {
  it('energy does not increase from step to step (c = 1)', async () => {
    await tf.setBackend('cpu');
    const { model, optimizer } = await trained(mlp, [8]);
    let prev = await energy(model);
    for (let i = 0; i < 10; i++) {
      await enormStep(model, { optimizer });
      const e = await energy(model);
      expect(e).toBeLessThanOrEqual(prev * (1 + 1e-6));
      prev = e;
    }
  });

  it('allocates nothing that survives: tf.memory() is flat over 1,000 steps', async () => {
    await tf.setBackend('cpu');
    const { model, optimizer } = await trained(mlp, [8], 1);
    await enormStep(model, { optimizer });
    const tensors = tf.memory().numTensors;
    const bytes = tf.memory().numBytes;
    for (let i = 0; i < 1000; i++) await enormStep(model, { optimizer });
    expect(tf.memory().numTensors).toBe(tensors);
    expect(tf.memory().numBytes).toBe(bytes);
  });

  it('refuses Adam, RMSProp and Adagrad with a clear error', async () => {
    await tf.setBackend('cpu');
    for (const optimizer of [tf.train.adam(), tf.train.rmsprop(0.1), tf.train.adagrad(0.1)]) {
      const model = mlp();
      const err = await enormStep(model, { optimizer }).catch((e) => e);
      expect(err).toBeInstanceOf(ENormError);
      expect(err.message).toMatch(/second moments .* use tf\.train\.sgd or tf\.train\.momentum/);
    }
  });

  it('cycleOn: an unknown value and webgpu without the webgpu backend are clear errors', async () => {
    await tf.setBackend('cpu');
    const model = mlp();
    for (const [cycleOn, message] of [['gpu', /cycleOn must be 'auto', 'wasm' or 'webgpu'/], ['webgpu', /needs the tfjs webgpu backend; the active backend is 'cpu'/]] as const) {
      const err = await enormStep(model, { optimizer: tf.train.sgd(0.1), cycleOn: cycleOn as 'webgpu' }).catch((e) => e);
      expect(err).toBeInstanceOf(ENormError);
      expect(err.message).toMatch(message);
    }
  });

  it('a weight that is already NaN (a diverged SGD step) is E_NONFINITE, not an overflow, and nothing changes', async () => {
    await tf.setBackend('cpu');
    await checkNonFiniteRefused('NaN');
  });

  it('a rescaling that overflows float32 is E_OVERFLOW naming the layer, and no variable changes', async () => {
    await tf.setBackend('cpu');
    await checkOverflowRefused();
  });

  it('reports what it balances, and the barriers: units a tanh layer keeps at scale 1', async () => {
    await tf.setBackend('cpu');
    const model = tf.sequential({
      layers: [
        tf.layers.dense({ units: 6, inputShape: [4], activation: 'relu', name: 'hidden_relu' }),
        tf.layers.dense({ units: 5, activation: 'tanh', name: 'hidden_tanh' }),
        tf.layers.dense({ units: 2, name: 'out' }),
      ],
    });
    const optimizer = tf.train.sgd(0.1);
    const info = await enormStep(model, { optimizer });
    expect(info).toMatchObject({ cycleOn: 'wasm', groups: 1, units: 6 });
    expect(info.barriers.map((b) => b.layer)).toEqual(['hidden_tanh/tanh']); // the activation inside the Dense layer
    expect(await enormStep(model, { optimizer })).toBe(info); // the plan is reused
  });

  it('refuses kernel constraints, naming the layer', async () => {
    await tf.setBackend('cpu');
    const model = tf.sequential({ layers: [tf.layers.dense({ units: 4, inputShape: [3], activation: 'relu', kernelConstraint: tf.constraints.maxNorm({ maxValue: 2 }), name: 'capped' }), tf.layers.dense({ units: 2 })] });
    const err = await enormStep(model, { optimizer: tf.train.sgd(0.1) }).catch((e) => e);
    expect(err).toBeInstanceOf(ENormError);
    expect(err.message).toMatch(/layer 'capped' has a kernelConstraint/);
  });

  it('ENormCallback runs a cycle after every batch of model.fit', async () => {
    await tf.setBackend('cpu');
    const fit = async (withENorm: boolean) => {
      const model = mlp();
      model.compile({ optimizer: tf.train.momentum(0.01, 0.9), loss: 'meanSquaredError' });
      let batches = 0;
      class Counting extends ENormCallback { override async onBatchEnd(): Promise<void> { batches++; await super.onBatchEnd(); } }
      const x = tf.randomNormal([32, 8], 0, 1, 'float32', 41);
      const y = tf.randomNormal([32, 3], 0, 1, 'float32', 42);
      await model.fit(x, y, { epochs: 2, batchSize: 8, verbose: 0, shuffle: false, callbacks: withENorm ? [new Counting()] : [] });
      return { batches, energy: await energy(model) };
    };
    const plain = await fit(false);
    const balanced = await fit(true);
    expect(balanced.batches).toBe(8);
    expect(balanced.energy).toBeLessThan(plain.energy);
  });
});

describe('backends agree', () => {
  it('the MLP trained 10 steps with ENorm gives the same weights on cpu and wasm (1e-4)', async () => {
    await tf.setBackend('cpu');
    const cpu = await trainWithENorm();
    await tf.setBackend('wasm');
    const wasm = await trainWithENorm();
    cpu.forEach((w, i) => expect(maxRelDiff(wasm[i], w)).toBeLessThan(1e-4));
  });
});
