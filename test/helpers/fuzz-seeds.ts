/**
 * Seed models for the model-file fuzzers: the repo's MNIST MLP (Sequential) and a small
 * functional conv model (Conv2D, BatchNormalization, DepthwiseConv2D, pooling, Add,
 * Concatenate, Flatten, Dense) saved by tfjs itself, so both are files tfjs really writes.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { mulberry32 } from '../../src/network/random.js';

export interface Seed {
  name: 'mnist-mlp' | 'conv-functional';
  /** model.json as parsed (a fresh deep copy is taken before every mutation). */
  modelJson: Record<string, unknown>;
  /** The single shard 'weights.bin' (all weights in manifest order). */
  shard: Uint8Array;
  /** Byte range in the shard of the output layer's bias: balancing never rescales it, so its bytes are copied verbatim. */
  outputBias: { name: string; start: number; end: number };
}

const MNIST_DIR = fileURLToPath(new URL('../../models/mnist-mlp/', import.meta.url));

/** Byte range of manifest entry `name` in the (single, float32-only) shard. */
function rangeOf(modelJson: Record<string, unknown>, name: string): { name: string; start: number; end: number } {
  const entries = (modelJson.weightsManifest as { weights: { name: string; shape: number[] }[] }[])[0].weights;
  let at = 0;
  for (const e of entries) {
    const bytes = 4 * e.shape.reduce((a, b) => a * b, 1);
    if (e.name === name) return { name, start: at, end: at + bytes };
    at += bytes;
  }
  throw new Error(`seed has no weight ${name}`);
}

export async function mnistSeed(): Promise<Seed> {
  const modelJson = JSON.parse(await readFile(`${MNIST_DIR}model.json`, 'utf8')) as Record<string, unknown>;
  const shard = new Uint8Array(await readFile(`${MNIST_DIR}weights.bin`));
  return { name: 'mnist-mlp', modelJson, shard, outputBias: rangeOf(modelJson, 'dense_3/bias') };
}

/**
 * input [8, 8, 3] -> conv (relu) -> BN -> depthwise (relu) -> max-pool -> two 1x1 convs added
 * -> concat with the pooled stream -> avg-pool -> flatten -> dense (relu) -> dense.
 * Weights are seeded (variances positive) so the seed is deterministic; needs a tfjs backend set.
 */
export async function convSeed(): Promise<Seed> {
  const L = tf.layers;
  const input = tf.input({ shape: [8, 8, 3], name: 'image' });
  const apply = (layer: tf.layers.Layer, x: tf.SymbolicTensor | tf.SymbolicTensor[]) => layer.apply(x) as tf.SymbolicTensor;
  const stem = apply(L.conv2d({ name: 'stem', filters: 4, kernelSize: 3, padding: 'same', activation: 'relu' }), input);
  const bn = apply(L.batchNormalization({ name: 'bn' }), stem);
  const dw = apply(L.depthwiseConv2d({ name: 'dw', kernelSize: 3, padding: 'same', activation: 'relu' }), bn);
  const pooled = apply(L.maxPooling2d({ name: 'pool', poolSize: 2 }), dw);
  const a = apply(L.conv2d({ name: 'branch_a', filters: 4, kernelSize: 1 }), pooled);
  const b = apply(L.conv2d({ name: 'branch_b', filters: 4, kernelSize: 1 }), pooled);
  const sum = apply(L.add({ name: 'sum' }), [a, b]);
  const cat = apply(L.concatenate({ name: 'cat' }), [sum, pooled]);
  const avg = apply(L.averagePooling2d({ name: 'avg', poolSize: 2 }), cat);
  const flat = apply(L.flatten({ name: 'flat' }), avg);
  const hidden = apply(L.dense({ name: 'hidden', units: 6, activation: 'relu' }), flat);
  const out = apply(L.dense({ name: 'logits', units: 3 }), hidden);
  const model = tf.model({ inputs: input, outputs: out, name: 'conv_functional' });

  const rng = mulberry32(20190228);
  model.setWeights(model.weights.map((w) => {
    const n = w.shape.reduce((x: number, y) => x * (y as number), 1);
    const positive = w.originalName.endsWith('moving_variance') || w.originalName.endsWith('gamma');
    return tf.tensor(Float32Array.from({ length: n }, () => (positive ? 0.5 + rng() : rng() - 0.5)), w.shape as number[]);
  }));

  let seed: Seed | undefined;
  await model.save(tf.io.withSaveHandler(async (art) => {
    const parts = ([] as ArrayBuffer[]).concat(art.weightData ?? []);
    const shard = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
    parts.reduce((at, p) => (shard.set(new Uint8Array(p), at), at + p.byteLength), 0);
    const modelJson = JSON.parse(JSON.stringify({
      format: art.format, generatedBy: art.generatedBy, convertedBy: art.convertedBy,
      modelTopology: art.modelTopology, weightsManifest: [{ paths: ['weights.bin'], weights: art.weightSpecs }],
    })) as Record<string, unknown>;
    seed = { name: 'conv-functional', modelJson, shard, outputBias: rangeOf(modelJson, 'logits/bias') };
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  model.dispose();
  return seed!;
}

/** Both seeds; sets the tfjs cpu backend. */
export async function loadSeeds(): Promise<Seed[]> {
  await tf.setBackend('cpu');
  return [await mnistSeed(), await convSeed()];
}
