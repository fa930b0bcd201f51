/**
 * Trains the deployment figures' conv net on MNIST and writes it twice, with the same weights:
 *   bench/deployment/models/conv-bn-dw/model.json + weights.bin   (tfjs layers model, NHWC)
 *   bench/deployment/models/conv-bn-dw/model.onnx                  (ONNX, NCHW, PyTorch style)
 *
 *   npx tsx bench/deployment/conv-model.ts [outDir]
 *
 * Architecture (28x28x1 in, 10 logits out):
 *   Conv2D 8@3x3 stride 2 same (no bias) + BatchNormalization + ReLU (14x14x8),
 *   DepthwiseConv2D 3x3 same, multiplier 2 (16 channels, no bias) + BatchNormalization + ReLU, MaxPool 2x2,
 *   Flatten (7*7*16 = 784), Dense 32 + ReLU, Dense 10 (logits: softmax is left to the loss).
 * Trained with the pure-JS tfjs cpu backend, seeded (split, shuffles, initial weights), on the
 * same 8,000 digits as models/mnist-mlp (scripts/train-default-model.ts's split).
 *
 * The ONNX export: Conv with OIHW weights, the depthwise layer as Conv group=8 (weight [16,1,3,3],
 * output channel c*2+m as in tfjs), BatchNormalization, Relu, MaxPool, Flatten (channels-first),
 * Gemm transB=1 (whose first weight is permuted from tfjs's HWC flatten order to ONNX's CHW).
 * onnxruntime-web then checks that the ONNX model gives the tfjs model's logits (1e-4) on 64 digits.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { batchOf, loadDigits, shuffled } from '../data/mnist.js';
import { saveTfjsFiles } from '../../test/helpers/tfjs-save.js';
import { buildOnnx, type NodeSpec, type TensorSpec } from '../../test/helpers/onnx-builder.js';
import { onnxRunner } from '../../src/model-io/onnx/runtime.js';
import { mulberry32 } from '../../src/network/random.js';
import { heldOut, MNIST_SPLIT_SEED, TRAIN_ROWS } from './split.js';

const OUT_DIR = process.argv[2] ?? 'bench/deployment/models/conv-bn-dw';
const EPOCHS = 1; // the cpu backend's depthwise gradient is slow: one pass over 8,000 digits is ~2 minutes
const BATCH = 32;
const BN_EPSILON = 1e-3; // tfjs's default, written into the ONNX nodes too
const CHECK_DIGITS = 64;
const CHECK_TOLERANCE = 1e-4;

function convNet(seed: number): tf.Sequential {
  const init = (k: number) => tf.initializers.glorotUniform({ seed: seed + k });
  return tf.sequential({
    name: 'conv_bn_dw',
    layers: [
      tf.layers.conv2d({ name: 'conv', inputShape: [28, 28, 1], filters: 8, kernelSize: 3, strides: 2, padding: 'same', useBias: false, kernelInitializer: init(1) }),
      tf.layers.batchNormalization({ name: 'bn1', epsilon: BN_EPSILON }),
      tf.layers.reLU({ name: 'relu1' }),
      tf.layers.depthwiseConv2d({ name: 'dw', kernelSize: 3, depthMultiplier: 2, padding: 'same', useBias: false, depthwiseInitializer: init(2) }),
      tf.layers.batchNormalization({ name: 'bn2', epsilon: BN_EPSILON }),
      tf.layers.reLU({ name: 'relu2' }),
      tf.layers.maxPooling2d({ name: 'pool2', poolSize: 2, strides: 2 }),
      tf.layers.flatten({ name: 'flatten' }),
      tf.layers.dense({ name: 'fc1', units: 32, activation: 'relu', kernelInitializer: init(3) }),
      tf.layers.dense({ name: 'fc2', units: 10, kernelInitializer: init(4) }),
    ],
  });
}

async function train(model: tf.Sequential): Promise<number> {
  const data = loadDigits();
  const rand = mulberry32(MNIST_SPLIT_SEED);
  const order = shuffled(data.count, rand);
  const trainRows = order.slice(0, TRAIN_ROWS);
  model.compile({ optimizer: tf.train.adam(2e-3), loss: (y: tf.Tensor, logits: tf.Tensor) => tf.losses.softmaxCrossEntropy(y, logits), metrics: ['accuracy'] });
  for (let epoch = 1; epoch <= EPOCHS; epoch++) {
    // One seeded permutation per epoch; fit() itself must not shuffle (it would use Math.random).
    const t = batchOf(data, shuffled(trainRows.length, rand).map((i) => trainRows[i]), 'image');
    const h = await model.fit(t.x, t.y, { epochs: 1, batchSize: BATCH, shuffle: false, verbose: 0 });
    tf.dispose([t.x, t.y]);
    console.log(`epoch ${epoch}/${EPOCHS}: loss ${Number(h.history.loss[0]).toFixed(4)}`);
  }
  const test = batchOf(data, heldOut(data.count), 'image');
  const predicted = (model.predict(test.x) as tf.Tensor).argMax(-1);
  const accuracy = (await predicted.equal(test.y.argMax(-1)).mean().data())[0];
  tf.dispose([test.x, test.y, predicted]);
  return accuracy;
}

// ---------------------------------------------------------------------------------------------
// ONNX export

/** [kh, kw, I, O] (HWIO) -> [O, I, kh, kw] (OIHW). */
function hwioToOihw(w: Float32Array, [kh, kw, ci, co]: number[]): Float32Array {
  const out = new Float32Array(w.length);
  for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) for (let i = 0; i < ci; i++) for (let o = 0; o < co; o++) {
    out[((o * ci + i) * kh + y) * kw + x] = w[((y * kw + x) * ci + i) * co + o];
  }
  return out;
}

/** Depthwise [kh, kw, C, M] -> grouped Conv weight [C*M, 1, kh, kw], output channel c*M + m. */
function depthwiseToGrouped(w: Float32Array, [kh, kw, c, m]: number[]): Float32Array {
  const out = new Float32Array(w.length);
  for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) for (let ch = 0; ch < c; ch++) for (let k = 0; k < m; k++) {
    out[((ch * m + k) * kh + y) * kw + x] = w[((y * kw + x) * c + ch) * m + k];
  }
  return out;
}

/**
 * The Dense kernel after Flatten, [h*w*c (HWC order), out] -> Gemm transB=1 weight [out, c*h*w (CHW order)]:
 * tfjs flattens NHWC maps as (y, x, ch), ONNX's Flatten of NCHW as (ch, y, x).
 */
function flattenedDenseToGemm(w: Float32Array, [h, wd, c]: number[], units: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let y = 0; y < h; y++) for (let x = 0; x < wd; x++) for (let ch = 0; ch < c; ch++) for (let o = 0; o < units; o++) {
    out[o * c * h * wd + (ch * h + y) * wd + x] = w[((y * wd + x) * c + ch) * units + o];
  }
  return out;
}

/** [in, out] -> [out, in] (Gemm transB=1). */
function transpose(w: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = w[r * cols + c];
  return out;
}

function exportOnnx(model: tf.Sequential): Uint8Array {
  const get = (layer: string, i: number) => model.getLayer(layer).getWeights()[i];
  const data = (layer: string, i: number) => get(layer, i).dataSync() as Float32Array;
  const shape = (layer: string, i: number) => get(layer, i).shape;
  const t = (name: string, dims: number[], values: Float32Array): TensorSpec => ({ name, dims, data: values });
  const bn = (p: string, c: number): TensorSpec[] => [0, 1, 2, 3].map((i) => t(`${p}.${['weight', 'bias', 'running_mean', 'running_var'][i]}`, [c], data(p, i)));
  const bnNode = (p: string, x: string, y: string): NodeSpec =>
    ({ op: 'BatchNormalization', inputs: [x, `${p}.weight`, `${p}.bias`, `${p}.running_mean`, `${p}.running_var`], outputs: [y], attrs: { epsilon: { f: BN_EPSILON } }, name: `/${p}/BatchNormalization` });
  const same = { kernel_shape: { ints: [3, 3] }, pads: { ints: [1, 1, 1, 1] } };
  const pool = { kernel_shape: { ints: [2, 2] }, strides: { ints: [2, 2] } };
  const { bytes } = buildOnnx({
    inputs: [{ name: 'input', dims: ['batch', 1, 28, 28] }],
    outputs: [{ name: 'logits', dims: ['batch', 10] }],
    initializers: [
      t('conv.weight', [8, 1, 3, 3], hwioToOihw(data('conv', 0), shape('conv', 0))), ...bn('bn1', 8),
      t('dw.weight', [16, 1, 3, 3], depthwiseToGrouped(data('dw', 0), shape('dw', 0))), ...bn('bn2', 16),
      t('fc1.weight', [32, 784], flattenedDenseToGemm(data('fc1', 0), [7, 7, 16], 32)), t('fc1.bias', [32], data('fc1', 1)),
      t('fc2.weight', [10, 32], transpose(data('fc2', 0), 32, 10)), t('fc2.bias', [10], data('fc2', 1)),
    ],
    nodes: [
      { op: 'Conv', inputs: ['input', 'conv.weight'], outputs: ['c1'], attrs: { ...same, strides: { ints: [2, 2] }, pads: { ints: [0, 0, 1, 1] } }, name: '/conv/Conv' },
      bnNode('bn1', 'c1', 'b1'),
      { op: 'Relu', inputs: ['b1'], outputs: ['r1'], name: '/relu1/Relu' },
      { op: 'Conv', inputs: ['r1', 'dw.weight'], outputs: ['c2'], attrs: { ...same, group: { i: 8 } }, name: '/dw/Conv' },
      bnNode('bn2', 'c2', 'b2'),
      { op: 'Relu', inputs: ['b2'], outputs: ['r2'], name: '/relu2/Relu' },
      { op: 'MaxPool', inputs: ['r2'], outputs: ['p2'], attrs: pool, name: '/pool2/MaxPool' },
      { op: 'Flatten', inputs: ['p2'], outputs: ['flat'], attrs: { axis: { i: 1 } }, name: '/flatten/Flatten' },
      { op: 'Gemm', inputs: ['flat', 'fc1.weight', 'fc1.bias'], outputs: ['h1'], attrs: { transB: { i: 1 } }, name: '/fc1/Gemm' },
      { op: 'Relu', inputs: ['h1'], outputs: ['a1'], name: '/relu3/Relu' },
      { op: 'Gemm', inputs: ['a1', 'fc2.weight', 'fc2.bias'], outputs: ['logits'], attrs: { transB: { i: 1 } }, name: '/fc2/Gemm' },
    ],
    docString: 'enorm bench/deployment/conv-model.ts: MNIST conv net with BN and a depthwise (multiplier 2) layer',
  });
  return bytes;
}

/** Largest |tfjs logit - onnxruntime logit| over CHECK_DIGITS digits (C = 1: NHWC and NCHW pixels coincide). */
async function onnxMatchesTfjs(model: tf.Sequential, onnx: Uint8Array): Promise<number> {
  const data = loadDigits();
  const rows = heldOut(data.count).slice(0, CHECK_DIGITS);
  const { x, y } = batchOf(data, rows, 'image');
  const expected = (model.predict(x) as tf.Tensor).dataSync() as Float32Array;
  const runner = await onnxRunner(onnx);
  if ('unavailable' in runner) throw new Error(runner.unavailable);
  const got = await runner(x.dataSync() as Float32Array, rows.length, [1, 28, 28]);
  tf.dispose([x, y]);
  return expected.reduce((m, v, i) => Math.max(m, Math.abs(v - got[i])), 0);
}

async function main(): Promise<void> {
  await tf.setBackend('cpu');
  const started = Date.now();
  const model = convNet(MNIST_SPLIT_SEED);
  const accuracy = await train(model);
  await mkdir(OUT_DIR, { recursive: true });
  await saveTfjsFiles(model, OUT_DIR);
  const onnx = exportOnnx(model);
  await writeFile(join(OUT_DIR, 'model.onnx'), onnx);
  const diff = await onnxMatchesTfjs(model, onnx);
  console.log(`test accuracy ${(accuracy * 100).toFixed(2)}% on ${heldOut(10000).length} held-out digits; ${((Date.now() - started) / 1000).toFixed(0)} s`);
  console.log(`onnxruntime vs tfjs on ${CHECK_DIGITS} digits: max |logit difference| ${diff.toExponential(2)}`);
  if (!(diff <= CHECK_TOLERANCE)) throw new Error(`the ONNX export differs from the tfjs model by ${diff} > ${CHECK_TOLERANCE}`);
  console.log(`saved ${OUT_DIR}/model.json, weights.bin, model.onnx`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
