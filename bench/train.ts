/**
 * Training-step benchmark for enorm/tfjs. One JSON line per (model, backend, method) with --json:
 * msPerStep for 'sgd' (the baseline: momentum SGD), 'sgd+enorm' (one ENorm cycle after the step)
 * and 'sgd+bn' (BatchNormalization after every hidden layer instead), and overhead = ms / baseline - 1.
 *
 *   npm run bench:train -- --json [--backend cpu|wasm] [--steps N]
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { parseArgs } from 'node:util';
import { enormStep } from '../src/tfjs/index.js';

const { values } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    backend: { type: 'string', multiple: true },
    steps: { type: 'string', default: '20' },
  },
});
const steps = Number(values.steps);
const backends = values.backend ?? ['cpu', 'wasm'];

type Method = 'sgd' | 'sgd+enorm' | 'sgd+bn';
interface Case { name: string; batch: number; input: number[]; build: (bn: boolean) => tf.LayersModel; conv: boolean }

const CASES: Case[] = [
  {
    name: 'mlp-784-500x6-10', batch: 256, input: [784], conv: false,
    build: (bn) => {
      const layers: tf.layers.Layer[] = [];
      for (let i = 0; i < 6; i++) {
        layers.push(tf.layers.dense({ units: 500, inputShape: i === 0 ? [784] : undefined, useBias: false, kernelInitializer: 'heNormal' }));
        if (bn) layers.push(tf.layers.batchNormalization());
        layers.push(tf.layers.reLU());
      }
      layers.push(tf.layers.dense({ units: 10, useBias: false, kernelInitializer: 'heNormal' }));
      return tf.sequential({ layers });
    },
  },
  {
    name: 'convnet-28x28-16-32-fc64', batch: 32, input: [28, 28, 1], conv: true,
    build: (bn) => {
      const layers: tf.layers.Layer[] = [];
      [16, 32].forEach((filters, i) => {
        layers.push(tf.layers.conv2d({ filters, kernelSize: 3, padding: 'same', inputShape: i === 0 ? [28, 28, 1] : undefined, kernelInitializer: 'heNormal' }));
        if (bn) layers.push(tf.layers.batchNormalization());
        layers.push(tf.layers.reLU(), tf.layers.maxPooling2d({ poolSize: 2 }));
      });
      layers.push(tf.layers.flatten(), tf.layers.dense({ units: 64, kernelInitializer: 'heNormal' }));
      if (bn) layers.push(tf.layers.batchNormalization());
      layers.push(tf.layers.reLU(), tf.layers.dense({ units: 10, kernelInitializer: 'heNormal' }));
      return tf.sequential({ layers });
    },
  },
];

async function msPerStep(c: Case, method: Method): Promise<number> {
  const model = c.build(method === 'sgd+bn');
  const optimizer = tf.train.momentum(0.01, 0.9);
  model.compile({ optimizer, loss: 'categoricalCrossentropy' });
  const x = tf.randomUniform([c.batch, ...c.input], 0, 1, 'float32', 1);
  const y = tf.oneHot(tf.randomUniform([c.batch], 0, 10, 'int32', 2), 10);
  const step = async () => {
    await model.trainOnBatch(x, y);
    if (method === 'sgd+enorm') await enormStep(model, { optimizer, c: 1.2 });
  };
  for (let i = 0; i < 3; i++) await step(); // warm-up: kernels compiled, ENorm plan built
  const samples: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t = performance.now();
    await step();
    samples.push(performance.now() - t);
  }
  tf.dispose([x, y]);
  model.dispose();
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)];
}

const rows: Record<string, unknown>[] = [];
for (const backend of backends) {
  await tf.setBackend(backend);
  await tf.ready();
  for (const c of CASES) {
    if (c.conv && backend === 'wasm') {
      // tfjs-backend-wasm 4.22 has no convolution gradients (Conv2DBackpropFilter): nothing to time.
      const row = { case: c.name, backend, method: 'sgd', skipped: 'tfjs-backend-wasm has no Conv2DBackpropFilter kernel' };
      rows.push(row);
      if (values.json) console.log(JSON.stringify(row));
      continue;
    }
    const base = await msPerStep(c, 'sgd');
    for (const method of ['sgd', 'sgd+enorm', 'sgd+bn'] as Method[]) {
      const ms = method === 'sgd' ? base : await msPerStep(c, method);
      const row = { case: c.name, backend, batch: c.batch, method, msPerStep: +ms.toFixed(3), baselineMs: +base.toFixed(3), overhead: +(ms / base - 1).toFixed(4) };
      rows.push(row);
      if (values.json) console.log(JSON.stringify(row));
    }
  }
}
if (!values.json) console.table(rows);
