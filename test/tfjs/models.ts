import * as tf from '@tensorflow/tfjs';
import { expect } from 'vitest';
import { ENormError } from '../../src/errors.js';
import { enormStep, type ENormStepInfo } from '../../src/tfjs/index.js';
import { maxRelDiff } from '../helpers/nets.js';

export { maxRelDiff };

export type Make = () => tf.LayersModel;

export const mlp: Make = () => tf.sequential({
  layers: [
    tf.layers.dense({ units: 16, inputShape: [8], activation: 'relu', kernelInitializer: tf.initializers.heNormal({ seed: 1 }), biasInitializer: tf.initializers.randomNormal({ stddev: 0.1, seed: 2 }) }),
    tf.layers.dense({ units: 12, activation: 'relu', kernelInitializer: tf.initializers.heNormal({ seed: 3 }) }),
    tf.layers.dense({ units: 3, kernelInitializer: tf.initializers.heNormal({ seed: 4 }) }),
  ],
});

export const convBn: Make = () => tf.sequential({
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

export const residual: Make = () => {
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

export const MODELS: { name: string; make: Make; shape: number[]; conv: boolean }[] = [
  { name: 'MLP with biases', make: mlp, shape: [8], conv: false },
  { name: 'conv + BN + pooling + dense', make: convBn, shape: [6, 6, 2], conv: true },
  { name: 'functional ResNet-style with Add', make: residual, shape: [6, 6, 3], conv: true },
];

/** Sum of squares of kernels and BN gammas: the energy ENorm minimises (biases not counted). */
export async function energy(model: tf.LayersModel): Promise<number> {
  let e = 0;
  for (const w of model.weights.filter((v) => /kernel|gamma/.test(v.originalName))) {
    e += ((await w.read().data()) as Float32Array).reduce((a, x) => a + x * x, 0);
  }
  return e;
}

/**
 * A few momentum-SGD steps. tfjs-backend-wasm has no convolution gradients, so models are trained on
 * `trainOn` (cpu for conv nets) and then used on the backend under test.
 */
export async function trained(make: Make, shape: number[], steps = 3, trainOn?: string): Promise<{ model: tf.LayersModel; optimizer: tf.Optimizer; x: tf.Tensor }> {
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

/**
 * The three checks after 5 enormSteps on the current backend: predictions unchanged (1e-5),
 * energy down, weight x momentum unchanged elementwise (1e-5).
 */
export async function checkStepPreserves(make: Make, shape: number[], trainOn?: string): Promise<void> {
  const { model, optimizer, x } = await trained(make, shape, 3, trainOn);
  const before = await (model.predict(x) as tf.Tensor).data();
  const energyBefore = await energy(model);
  const accumulators = new Map((await optimizer.getWeights()).filter((w) => w.name.endsWith('/momentum')).map((w) => [w.name.replace(/\/momentum$/, ''), w.tensor]));
  const products = () => Promise.all(model.weights.filter((w) => accumulators.has(w.name)).map(async (w) => {
    const m = await accumulators.get(w.name)!.data();
    return Float64Array.from(await w.read().data(), (v, i) => v * m[i]);
  }));
  const productsBefore = await products();
  expect(productsBefore.length).toBeGreaterThan(0);

  for (let i = 0; i < 5; i++) await enormStep(model, { optimizer });

  const after = await (model.predict(x) as tf.Tensor).data();
  expect(maxRelDiff(after, before)).toBeLessThan(1e-5);
  expect(await energy(model)).toBeLessThan(energyBefore);
  (await products()).forEach((p, i) => expect(maxRelDiff(p, productsBefore[i])).toBeLessThan(1e-5));
}

/** Weights of a model after 10 steps of momentum SGD + enormStep (c = 1.2) on the current backend. */
export async function trainWithENorm(make: Make = mlp, shape: number[] = [8], options: { cycleOn?: 'wasm' | 'webgpu' } = {}): Promise<Float32Array[]> {
  const model = make();
  const optimizer = tf.train.momentum(0.01, 0.9);
  model.compile({ optimizer, loss: 'meanSquaredError' });
  const x = tf.randomNormal([16, ...shape], 0, 1, 'float32', 51);
  const y = tf.randomNormal([16, 3], 0, 1, 'float32', 52);
  for (let step = 0; step < 10; step++) {
    await model.trainOnBatch(x, y);
    await enormStep(model, { optimizer, c: 1.2, ...options });
  }
  return Promise.all(model.weights.map(async (w) => (await w.read().data()) as Float32Array));
}

/** All weights, read back. */
const weightValues = (model: tf.LayersModel) => Promise.all(model.weights.map(async (w) => Array.from(await w.read().data())));

/**
 * A weight already NaN before the cycle (a diverged SGD step) is E_NONFINITE naming it, and no variable
 * changes. `value` is what the message says of it: the host names the value, the GPU only where it is.
 */
export async function checkNonFiniteRefused(value: 'NaN' | 'not finite'): Promise<void> {
  const { model, optimizer } = await trained(mlp, [8], 1);
  const kernel = model.layers[1].getWeights()[0];
  const broken = Float32Array.from(await kernel.data()); // data(): webgpu in Node cannot read synchronously
  broken[3] = NaN;
  model.layers[1].setWeights([tf.tensor(broken, kernel.shape), ...model.layers[1].getWeights().slice(1)]);
  const before = await weightValues(model);
  const err = await enormStep(model, { optimizer }).catch((e) => e);
  expect(err).toBeInstanceOf(ENormError);
  expect(err.code).toBe('E_NONFINITE');
  expect(err.message).toMatch(new RegExp(String.raw`layer '${model.layers[1].name}' weight\[3\] is ${value} before rescaling`));
  expect(await weightValues(model)).toEqual(before);
}

/** A rescaling that overflows float32 (c = 1e-80) is E_OVERFLOW naming the layer, and no variable changes. */
export async function checkOverflowRefused(): Promise<tf.LayersModel> {
  const { model, optimizer } = await trained(mlp, [8], 1);
  const before = await weightValues(model);
  const err = await enormStep(model, { optimizer, c: 1e-80 }).catch((e) => e);
  expect(err).toBeInstanceOf(ENormError);
  expect(err.code).toBe('E_OVERFLOW');
  expect(err.message).toMatch(new RegExp(String.raw`layer '(${model.layers.map((l) => l.name).join('|')})' (weight|bias)\[\d+\] became`));
  expect(await weightValues(model)).toEqual(before);
  await enormStep(model, { optimizer }); // and the next step works
  return model;
}

export const he = (seed: number) => ({ kernelInitializer: tf.initializers.heNormal({ seed }), biasInitializer: tf.initializers.randomNormal({ stddev: 0.1, seed: seed + 100 }) });

/** 8 -> 16 -> 12 -> 10 -> 3, ReLU, momentum SGD, a few steps trained. */
export async function trainedChain(): Promise<{ model: tf.LayersModel; optimizer: tf.Optimizer; x: tf.Tensor }> {
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ units: 16, inputShape: [8], activation: 'relu', ...he(1) }),
      tf.layers.dense({ units: 12, activation: 'relu', ...he(2) }),
      tf.layers.dense({ units: 10, activation: 'relu', ...he(3) }),
      tf.layers.dense({ units: 3, ...he(4) }),
    ],
  });
  const optimizer = tf.train.momentum(0.01, 0.9);
  model.compile({ optimizer, loss: 'meanSquaredError' });
  const x = tf.randomNormal([8, 8], 0, 1, 'float32', 61);
  await model.fit(x, tf.randomNormal([8, 3], 0, 1, 'float32', 62), { epochs: 3, batchSize: 8, verbose: 0, shuffle: false });
  return { model, optimizer, x };
}

/** Bit patterns, so that "unchanged" means bit-identical. */
export const bits = async (t: tf.Tensor) => Array.from(new Uint32Array(Float32Array.from((await t.data()) as Float32Array).buffer));
const layerBits = (layer: tf.SymbolicTensor['sourceLayer']) => Promise.all(layer.weights.map((w) => bits(w.read())));
export const allBits = (model: tf.LayersModel) => Promise.all(model.weights.map((w) => bits(w.read())));
const predict = (model: tf.LayersModel, x: tf.Tensor) => model.predict(x) as tf.Tensor;

/**
 * After 3 enormSteps on A: `other`'s predictions and the `frozen` layers' weights are bit-identical,
 * A's predictions are kept, A's other layers still balance (energy down, some weight moved), and the
 * barriers name every frozen layer with `reason`.
 */
export async function checkFrozenKept(a: { model: tf.LayersModel; optimizer: tf.Optimizer; x: tf.Tensor }, frozen: number[], reason: RegExp, other?: tf.LayersModel): Promise<void> {
  const { model, optimizer, x } = a;
  const otherBefore = other ? await bits(predict(other, x)) : null;
  const frozenBefore = await Promise.all(frozen.map((i) => layerBits(model.layers[i])));
  const free = model.layers.map((_, i) => i).filter((i) => !frozen.includes(i));
  const freeBefore = await Promise.all(free.map((i) => layerBits(model.layers[i])));
  const before = await predict(model, x).data();
  const energyBefore = await energy(model);
  let info: ENormStepInfo | undefined;
  for (let i = 0; i < 3; i++) info = await enormStep(model, { optimizer });
  if (other) expect(await bits(predict(other, x))).toEqual(otherBefore);
  expect(await Promise.all(frozen.map((i) => layerBits(model.layers[i])))).toEqual(frozenBefore);
  const freeAfter = await Promise.all(free.map((i) => layerBits(model.layers[i])));
  expect(freeAfter.some((l, i) => JSON.stringify(l) !== JSON.stringify(freeBefore[i]))).toBe(true);
  expect(maxRelDiff(await predict(model, x).data(), before)).toBeLessThan(1e-5);
  expect(await energy(model)).toBeLessThan(energyBefore);
  for (const i of frozen) {
    // A layer may cause several barriers (a layer norm also pins the layer before it): one gives `reason`.
    const reasons = info!.barriers.filter((b) => b.layer === model.layers[i].name).map((b) => b.reason);
    expect(reasons.find((r) => reason.test(r)) ?? reasons).toMatch(reason);
  }
}
