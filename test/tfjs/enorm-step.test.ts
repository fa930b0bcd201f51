import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, describe, expect, it } from 'vitest';
import { ENormError } from '../../src/errors.js';
import { ENormCallback, enormStep } from '../../src/tfjs/index.js';

type Make = () => tf.LayersModel;

const mlp: Make = () => tf.sequential({
  layers: [
    tf.layers.dense({ units: 16, inputShape: [8], activation: 'relu', kernelInitializer: tf.initializers.heNormal({ seed: 1 }), biasInitializer: tf.initializers.randomNormal({ stddev: 0.1, seed: 2 }) }),
    tf.layers.dense({ units: 12, activation: 'relu', kernelInitializer: tf.initializers.heNormal({ seed: 3 }) }),
    tf.layers.dense({ units: 3, kernelInitializer: tf.initializers.heNormal({ seed: 4 }) }),
  ],
});

const convBn: Make = () => tf.sequential({
  layers: [
    tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', inputShape: [6, 6, 2], kernelInitializer: tf.initializers.heNormal({ seed: 5 }), biasInitializer: tf.initializers.randomNormal({ stddev: 0.1, seed: 6 }) }),
    tf.layers.batchNormalization({ gammaInitializer: tf.initializers.randomUniform({ minval: 0.5, maxval: 1.5, seed: 7 }), betaInitializer: tf.initializers.randomNormal({ stddev: 0.1, seed: 8 }) }),
    tf.layers.reLU(),
    tf.layers.conv2d({ filters: 5, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: tf.initializers.heNormal({ seed: 9 }), biasInitializer: tf.initializers.randomNormal({ stddev: 0.1, seed: 10 }) }),
    tf.layers.maxPooling2d({ poolSize: 2 }),
    tf.layers.flatten(),
    tf.layers.dense({ units: 7, activation: 'relu', kernelInitializer: tf.initializers.heNormal({ seed: 11 }) }),
    tf.layers.dense({ units: 3, kernelInitializer: tf.initializers.heNormal({ seed: 12 }) }),
  ],
});

const residual: Make = () => {
  const input = tf.input({ shape: [6, 6, 3] });
  const init = (seed: number) => ({ kernelInitializer: tf.initializers.heNormal({ seed }) });
  const stem = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', ...init(21) }).apply(input) as tf.SymbolicTensor;
  const a = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', ...init(22) }).apply(stem) as tf.SymbolicTensor;
  const b = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', ...init(23) }).apply(a) as tf.SymbolicTensor;
  const sum = tf.layers.add().apply([b, stem]) as tf.SymbolicTensor;
  const act = tf.layers.reLU().apply(sum) as tf.SymbolicTensor;
  const pooled = tf.layers.globalAveragePooling2d({}).apply(act) as tf.SymbolicTensor;
  const out = tf.layers.dense({ units: 3, ...init(24) }).apply(pooled) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
};

const MODELS: { name: string; make: Make; shape: number[]; conv: boolean }[] = [
  { name: 'MLP with biases', make: mlp, shape: [8], conv: false },
  { name: 'conv + BN + pooling + dense', make: convBn, shape: [6, 6, 2], conv: true },
  { name: 'functional ResNet-style with Add', make: residual, shape: [6, 6, 3], conv: true },
];

/** Sum of squares of kernels and BN gammas: the energy ENorm minimises (biases not counted). */
function energy(model: tf.LayersModel): number {
  return model.weights
    .filter((w) => /kernel|gamma/.test(w.originalName))
    .reduce((e, w) => e + (w.read().dataSync() as Float32Array).reduce((a, x) => a + x * x, 0), 0);
}

function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) { num = Math.max(num, Math.abs(a[i] - b[i])); den = Math.max(den, Math.abs(b[i])); }
  return num / den;
}

/**
 * A few momentum-SGD steps. tfjs-backend-wasm has no convolution gradients, so models are trained on
 * `trainOn` (cpu for conv nets) and then used on the backend under test.
 */
async function trained(make: Make, shape: number[], steps = 3, trainOn?: string): Promise<{ model: tf.LayersModel; optimizer: tf.Optimizer; x: tf.Tensor }> {
  const backend = tf.getBackend();
  if (trainOn) await tf.setBackend(trainOn);
  const model = make();
  const optimizer = tf.train.momentum(0.01, 0.9);
  model.compile({ optimizer, loss: 'meanSquaredError' });
  const x = tf.randomNormal([8, ...shape], 0, 1, 'float32', 31);
  const y = tf.randomNormal([8, 3], 0, 1, 'float32', 32);
  await model.fit(x, y, { epochs: steps, batchSize: 8, verbose: 0, shuffle: false });
  await tf.setBackend(backend);
  return { model, optimizer, x };
}

afterAll(() => tf.setBackend('cpu'));

describe.each(['cpu', 'wasm'])('enormStep on the tfjs %s backend', (backend) => {
  it.each(MODELS)('$name: predictions kept, energy down, weight x momentum unchanged', async ({ make, shape, conv }) => {
    await tf.setBackend(backend);
    const { model, optimizer, x } = await trained(make, shape, 3, conv && backend === 'wasm' ? 'cpu' : undefined);
    expect(tf.getBackend()).toBe(backend);
    const before = (model.predict(x) as tf.Tensor).dataSync().slice();
    const energyBefore = energy(model);
    const accumulators = new Map((await optimizer.getWeights()).filter((w) => w.name.endsWith('/momentum')).map((w) => [w.name.replace(/\/momentum$/, ''), w.tensor]));
    const products = () => model.weights.filter((w) => accumulators.has(w.name)).map((w) => {
      const m = accumulators.get(w.name)!.dataSync();
      return Float64Array.from(w.read().dataSync(), (v, i) => v * m[i]);
    });
    const productsBefore = products();
    expect(productsBefore.length).toBeGreaterThan(0);

    for (let i = 0; i < 5; i++) await enormStep(model, { optimizer });

    const after = (model.predict(x) as tf.Tensor).dataSync();
    expect(maxRelDiff(after, before)).toBeLessThan(1e-5);
    expect(energy(model)).toBeLessThan(energyBefore);
    products().forEach((p, i) => expect(maxRelDiff(p, productsBefore[i])).toBeLessThan(1e-5));
  });
});

describe('enormStep', () => {
  it('energy does not increase from step to step (c = 1)', async () => {
    await tf.setBackend('cpu');
    const { model, optimizer } = await trained(mlp, [8]);
    let prev = energy(model);
    for (let i = 0; i < 10; i++) {
      await enormStep(model, { optimizer });
      const e = energy(model);
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
      return { batches, energy: energy(model) };
    };
    const plain = await fit(false);
    const balanced = await fit(true);
    expect(balanced.batches).toBe(8);
    expect(balanced.energy).toBeLessThan(plain.energy);
  });
});

describe('backends agree', () => {
  it('the MLP trained 10 steps with ENorm gives the same weights on cpu and wasm (1e-4)', async () => {
    const run = async (backend: string) => {
      await tf.setBackend(backend);
      const model = mlp();
      const optimizer = tf.train.momentum(0.01, 0.9);
      model.compile({ optimizer, loss: 'meanSquaredError' });
      const x = tf.randomNormal([16, 8], 0, 1, 'float32', 51);
      const y = tf.randomNormal([16, 3], 0, 1, 'float32', 52);
      for (let step = 0; step < 10; step++) {
        await model.trainOnBatch(x, y);
        await enormStep(model, { optimizer, c: 1.2 });
      }
      return model.weights.map((w) => w.read().dataSync().slice());
    };
    const cpu = await run('cpu');
    const wasm = await run('wasm');
    cpu.forEach((w, i) => expect(maxRelDiff(wasm[i], w)).toBeLessThan(1e-4));
  });
});
