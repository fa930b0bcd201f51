// Train a deep ReLU MLP on MNIST (the `mnist` registry package) with and without ENorm and compare
// test accuracy. Momentum SGD; the ENorm run adds one cycle after every step (two lines, marked).
//   npx tsx examples/train-mnist.ts [--depth 6] [--width 256] [--epochs 3] [--train 8000] [--backend wasm|cpu|webgpu]
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { SingleBar, Presets } from 'cli-progress';
import { parseArgs } from 'node:util';
import { enormStep } from '../src/tfjs/index.js';
import { mulberry32 } from '../src/network/random.js';
import { batchOf, loadDigits, shuffled } from '../bench/data/mnist.js';
import { useWebGPU } from '../scripts/webgpu-node.js';

const { values } = parseArgs({
  options: {
    depth: { type: 'string', default: '6' },
    width: { type: 'string', default: '256' },
    epochs: { type: 'string', default: '3' },
    train: { type: 'string', default: '8000' },
    batch: { type: 'string', default: '64' },
    lr: { type: 'string', default: '0.02' },
    c: { type: 'string', default: '1.2' },
    backend: { type: 'string', default: 'wasm' },
    seed: { type: 'string', default: '1' },
    quiet: { type: 'boolean', default: false },
  },
});
const depth = Number(values.depth);
const width = Number(values.width);
const epochs = Number(values.epochs);
const trainCount = Number(values.train);
const batch = Number(values.batch);
const seed = Number(values.seed);

if (values.backend === 'webgpu') await useWebGPU(); // Dawn in Node; enormStep then cycles on the GPU
else await tf.setBackend(values.backend);
const data = loadDigits();
const order = shuffled(data.count, mulberry32(seed));
const trainRows = order.slice(0, trainCount);
const testRows = order.slice(8000); // the last 2,000 digits are never trained on
const test = batchOf(data, testRows);

function build(): tf.Sequential {
  const layers: tf.layers.Layer[] = [];
  for (let i = 0; i < depth; i++) {
    layers.push(tf.layers.dense({ units: width, inputShape: i === 0 ? [784] : undefined, activation: 'relu', kernelInitializer: tf.initializers.heNormal({ seed: seed + i }) }));
  }
  layers.push(tf.layers.dense({ units: 10, activation: 'softmax', kernelInitializer: tf.initializers.heNormal({ seed: seed + depth }) }));
  return tf.sequential({ layers });
}

async function train(withENorm: boolean): Promise<number> {
  const model = build();
  const optimizer = tf.train.momentum(Number(values.lr), 0.9);
  model.compile({ optimizer, loss: 'categoricalCrossentropy' });
  const steps = Math.floor(trainRows.length / batch);
  const bar = new SingleBar({ format: `${withENorm ? 'sgd+enorm' : 'sgd      '} |{bar}| {percentage}% epoch {epoch}/${epochs} loss {loss} eta {eta}s`, noTTYOutput: true, notTTYSchedule: 5000 }, Presets.shades_classic);
  if (!values.quiet) bar.start(epochs * steps, 0, { epoch: 1, loss: '-' });
  const rand = mulberry32(seed + 100);
  for (let epoch = 1; epoch <= epochs; epoch++) {
    const perm = shuffled(trainRows.length, rand);
    for (let s = 0; s < steps; s++) {
      const { x, y } = batchOf(data, perm.slice(s * batch, (s + 1) * batch).map((i) => trainRows[i]));
      const loss = (await model.trainOnBatch(x, y)) as number;
      if (withENorm) await enormStep(model, { optimizer, c: Number(values.c) }); // <- the ENorm line
      tf.dispose([x, y]);
      if (!values.quiet) bar.increment(1, { epoch, loss: loss.toFixed(4) });
    }
  }
  if (!values.quiet) bar.stop();
  const predictions = model.predict(test.x) as tf.Tensor;
  const correct = tf.tidy(() => predictions.argMax(1).equal(test.y.argMax(1)).sum());
  const accuracy = (await correct.data())[0] / testRows.length;
  tf.dispose([predictions, correct]);
  model.dispose();
  return accuracy;
}

console.log(`MLP 784 -> ${width} x ${depth} -> 10 on ${trainRows.length} MNIST digits, ${epochs} epochs, batch ${batch}, tfjs ${tf.getBackend()}`);
const baseline = await train(false);
const enorm = await train(true);
console.log(`test accuracy (${testRows.length} held-out digits): sgd ${(baseline * 100).toFixed(2)}%, sgd+enorm ${(enorm * 100).toFixed(2)}%`);
