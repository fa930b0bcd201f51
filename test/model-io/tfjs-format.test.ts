import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { ENormError, type ENormErrorCode } from '../../src/errors.js';
import { resolveGraph } from '../../src/network/graph.js';
import type { Layer } from '../../src/network/layers.js';
import { parseTfjsModel, serializeTfjsModel, type TfjsModel } from '../../src/model-io/tfjs/index.js';
import { mulberry32 } from '../../src/network/random.js';
import { functionalChain, sequentialMlp } from '../cli/model-files.js';

// ---------------------------------------------------------------------------------------
// helpers: real tfjs models, saved in memory

interface Saved {
  modelJson: Record<string, any>;
  weightData: ArrayBuffer;
}

function concat(parts: ArrayBuffer | ArrayBuffer[] | undefined): ArrayBuffer {
  const list = parts === undefined ? [] : ([] as ArrayBuffer[]).concat(parts);
  const out = new Uint8Array(list.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of list) {
    out.set(new Uint8Array(p), at);
    at += p.byteLength;
  }
  return out.buffer;
}

/** Saves a tfjs model the way a model.json + weights.bin pair would hold it (JSON round-tripped). */
async function save(model: tf.LayersModel): Promise<Saved> {
  let saved: Saved | undefined;
  await model.save(tf.io.withSaveHandler(async (a) => {
    const modelJson = {
      format: a.format, generatedBy: a.generatedBy, convertedBy: a.convertedBy,
      modelTopology: a.modelTopology,
      weightsManifest: [{ paths: ['weights.bin'], weights: a.weightSpecs }],
    };
    saved = { modelJson: JSON.parse(JSON.stringify(modelJson)), weightData: concat(a.weightData) };
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  return saved!;
}

/** Replaces every weight with seeded random values (variances positive), so nothing is a trivial 0 or 1. */
function randomizeWeights(model: tf.LayersModel, seed: number): void {
  model.setWeights(model.weights.map((w, i) => (w.originalName.endsWith('moving_variance')
    ? tf.randomUniform(w.shape as number[], 0.5, 1.5, 'float32', seed + i)
    : tf.randomUniform(w.shape as number[], -0.5, 0.5, 'float32', seed + i))));
}

async function reload(modelJson: object, weightData: ArrayBuffer): Promise<tf.LayersModel> {
  const j = JSON.parse(JSON.stringify(modelJson));
  return tf.loadLayersModel(tf.io.fromMemory({ modelTopology: j.modelTopology, weightSpecs: j.weightsManifest[0].weights, weightData }));
}

async function predict(model: tf.LayersModel, input: tf.Tensor): Promise<Float32Array> {
  const y = model.predict(input) as tf.Tensor;
  const data = (await y.data()) as Float32Array;
  y.dispose();
  return data;
}

function randomInput(shape: number[], seed: number): tf.Tensor {
  return tf.randomUniform([3, ...shape], -1, 1, 'float32', seed);
}

function byName(net: Layer[], name: string): Layer {
  const l = net.find((x) => x.name === name);
  if (!l) throw new Error(`no layer ${name}; have ${net.map((x) => x.name).join(', ')}`);
  return l;
}

function summary(net: Layer[]): string[] {
  return net.map((l) => `${l.name}:${l.kind === 'activation' ? `activation(${l.fn})` : l.kind}`);
}

/** Every Float32Array of the network is (identically) a model weight, and equals the saved tfjs values. */
function expectTensorsAreModelWeights(model: TfjsModel, saved: Saved): number {
  const decoded = tf.io.decodeWeights(saved.weightData, saved.modelJson.weightsManifest[0].weights);
  const tensors = model.network.flatMap((l) => Object.values(l).filter((v): v is Float32Array => v instanceof Float32Array));
  for (const t of tensors) {
    const w = model.weights.find((e) => e.data === t);
    expect(w, 'network tensor is not a model weight entry').toBeDefined();
    expect(Array.from(t)).toEqual(Array.from(decoded[w!.name].dataSync()));
  }
  expect(new Set(tensors).size).toBe(tensors.length);
  return tensors.length;
}

function expectError(fn: () => unknown, code: ENormErrorCode, pattern: RegExp): ENormError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(ENormError);
  const e = caught as ENormError;
  expect(e.code).toBe(code);
  expect(e.message).toMatch(pattern);
  expect(e.message).not.toContain('\n');
  return e;
}

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const init = (seed: number) => tf.initializers.glorotUniform({ seed });

// ---------------------------------------------------------------------------------------
// 1. Sequential MLP

function buildMlp(): tf.Sequential {
  const m = tf.sequential({
    layers: [
      tf.layers.dense({ name: 'fc1', inputShape: [12], units: 16, activation: 'relu', kernelInitializer: init(1) }),
      tf.layers.dense({ name: 'fc2', units: 10, activation: 'linear', kernelInitializer: init(2) }),
      tf.layers.dense({ name: 'fc3', units: 8, activation: 'relu', kernelInitializer: init(3) }),
      tf.layers.dense({ name: 'out', units: 5, activation: 'softmax', kernelInitializer: init(4) }),
    ],
  });
  randomizeWeights(m, 100);
  return m;
}

describe('Sequential MLP', () => {
  it('maps to input, dense, relu, ... with the tfjs arrays', async () => {
    const saved = await save(buildMlp());
    const model = parseTfjsModel(saved.modelJson, saved.weightData);
    expect(summary(model.network)).toEqual([
      'fc1_input:input', 'fc1:dense', 'fc1/relu:relu', 'fc2:dense', 'fc3:dense', 'fc3/relu:relu', 'out:dense', 'out/softmax:activation(softmax)',
    ]);
    expect(model.inputShape).toEqual([12]);
    expect(byName(model.network, 'fc1_input')).toEqual({ kind: 'input', name: 'fc1_input', shape: [12] });
    const fc1 = byName(model.network, 'fc1');
    expect(fc1).toMatchObject({ kind: 'dense', layout: 'io', shape: [12, 16] });
    expect(byName(model.network, 'out')).toMatchObject({ kind: 'dense', shape: [8, 5] });
    expect(model.network.every((l) => l.inputs === undefined)).toBe(true);
    expect(resolveGraph(model.network).outputs).toEqual([model.network.length - 1]);
    expect(model.weights.map((w) => w.name)).toEqual(['fc1/kernel', 'fc1/bias', 'fc2/kernel', 'fc2/bias', 'fc3/kernel', 'fc3/bias', 'out/kernel', 'out/bias']);
    expect(expectTensorsAreModelWeights(model, saved)).toBe(8);
    expect(model.topology).toEqual(saved.modelJson.modelTopology);
  });

  it('serializes to a model tfjs loads and that predicts exactly the same', async () => {
    const original = buildMlp();
    const saved = await save(original);
    const model = parseTfjsModel(saved.modelJson, [saved.weightData]);
    const { modelJson, weightData } = serializeTfjsModel(model);
    expect(modelJson).toMatchObject({ format: 'layers-model', convertedBy: 'enorm', weightsManifest: [{ paths: ['weights.bin'] }] });
    expect(new Uint8Array(weightData)).toEqual(new Uint8Array(saved.weightData));
    const reloaded = await reload(modelJson, weightData);
    const x = randomInput([12], 7);
    expect(await predict(reloaded, x)).toEqual(await predict(original, x));
  });

  it('writes in-place changes of the network (the arrays are the model weights)', async () => {
    const original = buildMlp();
    const saved = await save(original);
    const model = parseTfjsModel(saved.modelJson, saved.weightData);
    const fc2 = byName(model.network, 'fc2') as Extract<Layer, { kind: 'dense' }>;
    fc2.weight[3] = 42.5;
    fc2.bias![1] = -7.25;
    const reloaded = await reload(...Object.values(serializeTfjsModel(model)) as [object, ArrayBuffer]);
    const [kernel, bias] = reloaded.getLayer('fc2').getWeights();
    expect(kernel.dataSync()[3]).toBe(42.5);
    expect(bias.dataSync()[1]).toBe(-7.25);
    const x = randomInput([12], 8);
    expect(await predict(reloaded, x)).not.toEqual(await predict(original, x));
  });

  it('a function-preserving rescaling done through the network reaches the saved model', async () => {
    const original = buildMlp();
    const saved = await save(original);
    const model = parseTfjsModel(saved.modelJson, saved.weightData);
    const fc1 = byName(model.network, 'fc1') as Extract<Layer, { kind: 'dense' }>;
    const fc2 = byName(model.network, 'fc2') as Extract<Layer, { kind: 'dense' }>;
    // hidden unit 5 of fc1 (io layout: column 5 of fc1, row 5 of fc2), scaled by d = 4
    for (let i = 0; i < 12; i++) fc1.weight[i * 16 + 5] *= 4;
    fc1.bias![5] *= 4;
    for (let j = 0; j < 10; j++) fc2.weight[5 * 10 + j] /= 4;
    const reloaded = await reload(...Object.values(serializeTfjsModel(model)) as [object, ArrayBuffer]);
    expect(reloaded.getLayer('fc1').getWeights()[1].dataSync()[5]).toBe(fc1.bias![5]);
    const x = randomInput([12], 9);
    const [a, b] = [await predict(reloaded, x), await predict(original, x)];
    a.forEach((v, i) => expect(v).toBeCloseTo(b[i], 5));
  });
});

// ---------------------------------------------------------------------------------------
// 2. Sequential conv net

function buildConvNet(): tf.Sequential {
  const m = tf.sequential({
    layers: [
      tf.layers.conv2d({ name: 'conv', inputShape: [12, 12, 3], filters: 4, kernelSize: 3, padding: 'same', activation: 'relu', kernelInitializer: init(11) }),
      tf.layers.batchNormalization({ name: 'bn', epsilon: 0.01 }),
      tf.layers.maxPooling2d({ name: 'maxpool', poolSize: 2 }),
      tf.layers.depthwiseConv2d({ name: 'dw', kernelSize: 3, depthMultiplier: 2, padding: 'same', depthwiseInitializer: init(12) }),
      tf.layers.separableConv2d({ name: 'sep', filters: 6, kernelSize: 3, padding: 'valid', activation: 'relu', depthwiseInitializer: init(13), pointwiseInitializer: init(14) }),
      tf.layers.averagePooling2d({ name: 'avgpool', poolSize: 2, strides: 2 }),
      tf.layers.flatten({ name: 'flat' }),
      tf.layers.dropout({ name: 'drop', rate: 0.25 }),
      tf.layers.dense({ name: 'fc', units: 16, activation: 'relu', kernelInitializer: init(15) }),
      tf.layers.dense({ name: 'head', units: 5, activation: 'softmax', kernelInitializer: init(16) }),
    ],
  });
  randomizeWeights(m, 200);
  return m;
}

describe('Sequential conv net', () => {
  it('maps every layer with its layout, shapes and hyper-parameters', async () => {
    const saved = await save(buildConvNet());
    const model = parseTfjsModel(saved.modelJson, saved.weightData);
    expect(summary(model.network)).toEqual([
      'conv_input:input', 'conv:conv2d', 'conv/relu:relu', 'bn:batch-norm', 'maxpool:max-pool', 'dw:depthwise-conv2d',
      'sep/depthwise:depthwise-conv2d', 'sep:conv2d', 'sep/relu:relu', 'avgpool:avg-pool', 'flat:flatten', 'drop:dropout',
      'fc:dense', 'fc/relu:relu', 'head:dense', 'head/softmax:activation(softmax)',
    ]);
    const net = model.network;
    expect(model.inputShape).toEqual([12, 12, 3]);
    expect(byName(net, 'conv')).toMatchObject({ layout: 'hwio', shape: [3, 3, 3, 4], strides: [1, 1], padding: 'same' });
    expect(byName(net, 'bn')).toMatchObject({ epsilon: 0.01 });
    for (const k of ['gamma', 'beta', 'mean', 'variance']) expect((byName(net, 'bn') as any)[k]).toHaveLength(4);
    expect(byName(net, 'maxpool')).toMatchObject({ size: [2, 2], strides: [2, 2], padding: 'valid' });
    expect(byName(net, 'dw')).toMatchObject({ layout: 'hwcm', shape: [3, 3, 4, 2], padding: 'same' });
    expect((byName(net, 'dw') as any).bias).toHaveLength(8);
    expect(byName(net, 'sep/depthwise')).toMatchObject({ layout: 'hwcm', shape: [3, 3, 8, 1], padding: 'valid' });
    expect((byName(net, 'sep/depthwise') as any).bias).toBeUndefined();
    expect(byName(net, 'sep')).toMatchObject({ layout: 'hwio', shape: [1, 1, 8, 6], strides: [1, 1], padding: 'valid' });
    expect((byName(net, 'sep') as any).bias).toHaveLength(6);
    expect(byName(net, 'avgpool')).toMatchObject({ size: [2, 2], strides: [2, 2] });
    expect(byName(net, 'flat')).toMatchObject({ order: 'channels-last' });
    expect(byName(net, 'drop')).toMatchObject({ rate: 0.25 });
    expect(byName(net, 'fc')).toMatchObject({ layout: 'io', shape: [24, 16] });
    expect(expectTensorsAreModelWeights(model, saved)).toBe(15);
    const sep = byName(net, 'sep') as Extract<Layer, { kind: 'conv2d' }>;
    expect(sep.weight).toBe(model.weights.find((w) => w.name === 'sep/pointwise_kernel')!.data);
  });

  it('round-trips through tfjs with identical predictions, and in-place edits reach tfjs', async () => {
    const original = buildConvNet();
    const saved = await save(original);
    const model = parseTfjsModel(saved.modelJson, saved.weightData);
    const x = randomInput([12, 12, 3], 21);
    const same = await reload(...Object.values(serializeTfjsModel(model)) as [object, ArrayBuffer]);
    expect(await predict(same, x)).toEqual(await predict(original, x));

    const bn = byName(model.network, 'bn') as Extract<Layer, { kind: 'batch-norm' }>;
    const sep = byName(model.network, 'sep') as Extract<Layer, { kind: 'conv2d' }>;
    bn.gamma![2] = 3.5;
    sep.weight[0] = -2.75;
    const changed = await reload(...Object.values(serializeTfjsModel(model)) as [object, ArrayBuffer]);
    expect(changed.getLayer('bn').getWeights()[0].dataSync()[2]).toBe(3.5);
    expect(changed.getLayer('sep').getWeights()[1].dataSync()[0]).toBe(-2.75);
    expect(await predict(changed, x)).not.toEqual(await predict(original, x));
  });
});

// ---------------------------------------------------------------------------------------
// 3. functional ResNet-style model

function buildResNet(): tf.LayersModel {
  const conv = (name: string, filters: number, kernelSize: number, activation: 'relu' | 'linear', seed: number) =>
    tf.layers.conv2d({ name, filters, kernelSize, padding: 'same', activation, kernelInitializer: init(seed) });
  const input = tf.input({ shape: [8, 8, 3], name: 'image' });
  const stem = conv('stem', 4, 3, 'relu', 31).apply(input) as tf.SymbolicTensor;
  // block 1: identity shortcut
  const a1 = conv('b1_conv1', 4, 3, 'relu', 32).apply(stem) as tf.SymbolicTensor;
  const a2 = conv('b1_conv2', 4, 3, 'linear', 33).apply(a1) as tf.SymbolicTensor;
  const add1 = tf.layers.add({ name: 'b1_add' }).apply([a2, stem]) as tf.SymbolicTensor;
  const r1 = tf.layers.reLU({ name: 'b1_relu' }).apply(add1) as tf.SymbolicTensor;
  // block 2: 1x1 projection shortcut 4 -> 8 channels
  const c1 = conv('b2_conv1', 8, 3, 'relu', 34).apply(r1) as tf.SymbolicTensor;
  const c2 = conv('b2_conv2', 8, 3, 'linear', 35).apply(c1) as tf.SymbolicTensor;
  const proj = conv('b2_proj', 8, 1, 'linear', 36).apply(r1) as tf.SymbolicTensor;
  const add2 = tf.layers.add({ name: 'b2_add' }).apply([c2, proj]) as tf.SymbolicTensor;
  const r2 = tf.layers.leakyReLU({ name: 'b2_leaky', alpha: 0.2 }).apply(add2) as tf.SymbolicTensor;
  // a side branch concatenated to the stream
  const side = conv('side', 4, 1, 'relu', 37).apply(r2) as tf.SymbolicTensor;
  const cat = tf.layers.concatenate({ name: 'cat' }).apply([r2, side]) as tf.SymbolicTensor;
  const gap = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(cat) as tf.SymbolicTensor;
  const out = tf.layers.dense({ name: 'logits', units: 3, activation: 'softmax', kernelInitializer: init(38) }).apply(gap) as tf.SymbolicTensor;
  const m = tf.model({ inputs: input, outputs: out, name: 'resnet' });
  randomizeWeights(m, 300);
  return m;
}

describe('functional ResNet-style model', () => {
  it('wires inputs from inbound_nodes through derived layer names', async () => {
    const saved = await save(buildResNet());
    expect(saved.modelJson.modelTopology.class_name).toBe('Model');
    const model = parseTfjsModel(saved.modelJson, saved.weightData);
    const net = model.network;
    expect(model.inputShape).toEqual([8, 8, 3]);
    expect(net[0]).toEqual({ kind: 'input', name: 'image', shape: [8, 8, 3] });
    const reads = (name: string) => byName(net, name).inputs;
    expect(reads('stem')).toEqual(['image']);
    expect(reads('b1_conv1')).toEqual(['stem/relu']);
    expect(reads('b1_add')).toEqual(['b1_conv2', 'stem/relu']);
    expect(byName(net, 'b1_relu').kind).toBe('relu');
    expect(reads('b2_conv1')).toEqual(['b1_relu']);
    expect(reads('b2_proj')).toEqual(['b1_relu']);
    expect(byName(net, 'b2_proj')).toMatchObject({ kind: 'conv2d', shape: [1, 1, 4, 8] });
    expect(reads('b2_add')).toEqual(['b2_conv2', 'b2_proj']);
    expect(byName(net, 'b2_leaky')).toMatchObject({ kind: 'leaky-relu', alpha: expect.closeTo(0.2, 6), inputs: ['b2_add'] });
    expect(byName(net, 'cat')).toMatchObject({ kind: 'concat', inputs: ['b2_leaky', 'side/relu'] });
    expect(byName(net, 'gap')).toMatchObject({ kind: 'global-avg-pool', inputs: ['cat'] });
    expect(byName(net, 'logits')).toMatchObject({ kind: 'dense', shape: [12, 3], inputs: ['gap'] });
    expect(byName(net, 'logits/softmax')).toMatchObject({ kind: 'activation', fn: 'softmax' });
    const g = resolveGraph(net);
    expect(g.outputs.map((k) => net[k].name)).toEqual(['logits/softmax']);
    expect(expectTensorsAreModelWeights(model, saved)).toBe(16);
  });

  it('round-trips through tfjs with identical predictions, and in-place edits reach tfjs', async () => {
    const original = buildResNet();
    const saved = await save(original);
    const model = parseTfjsModel(saved.modelJson, saved.weightData);
    const x = randomInput([8, 8, 3], 41);
    const same = await reload(...Object.values(serializeTfjsModel(model)) as [object, ArrayBuffer]);
    expect(await predict(same, x)).toEqual(await predict(original, x));

    const proj = byName(model.network, 'b2_proj') as Extract<Layer, { kind: 'conv2d' }>;
    proj.bias![7] = 9.5;
    const changed = await reload(...Object.values(serializeTfjsModel(model)) as [object, ArrayBuffer]);
    expect(changed.getLayer('b2_proj').getWeights()[1].dataSync()[7]).toBe(9.5);
    expect(await predict(changed, x)).not.toEqual(await predict(original, x));
  });
});

// ---------------------------------------------------------------------------------------
// other supported variants

describe('variants', () => {
  it('standalone Activation / Softmax / ReLU(max 6) layers, no-bias layers and BN without scale/center', async () => {
    const m = tf.sequential({
      layers: [
        tf.layers.dense({ name: 'd1', inputShape: [6], units: 5, useBias: false }),
        tf.layers.batchNormalization({ name: 'bn', scale: false, center: false }),
        tf.layers.activation({ name: 'act_relu', activation: 'relu' }),
        tf.layers.activation({ name: 'act_lin', activation: 'linear' }),
        tf.layers.dense({ name: 'd2', units: 4, activation: 'tanh' }),
        tf.layers.reLU({ name: 'relu6', maxValue: 6 }),
        tf.layers.activation({ name: 'act_sig', activation: 'sigmoid' }),
        tf.layers.softmax({ name: 'sm' }),
      ],
    });
    randomizeWeights(m, 400);
    const saved = await save(m);
    const model = parseTfjsModel(saved.modelJson, saved.weightData);
    expect(summary(model.network)).toEqual([
      'd1_input:input', 'd1:dense', 'bn:batch-norm', 'act_relu:relu', 'act_lin:identity', 'd2:dense', 'd2/tanh:activation(tanh)',
      'relu6:activation(relu6)', 'act_sig:activation(sigmoid)', 'sm:activation(softmax)',
    ]);
    expect((byName(model.network, 'd1') as any).bias).toBeUndefined();
    const bn = byName(model.network, 'bn') as Extract<Layer, { kind: 'batch-norm' }>;
    expect(bn.gamma).toBeUndefined();
    expect(bn.beta).toBeUndefined();
    expect(bn.mean).toHaveLength(5);
    const x = randomInput([6], 51);
    expect(await predict(await reload(...Object.values(serializeTfjsModel(model)) as [object, ArrayBuffer]), x)).toEqual(await predict(m, x));
  });

  it('GlobalMaxPooling2D and strided convolutions', async () => {
    const m = tf.sequential({
      layers: [
        tf.layers.conv2d({ name: 'c', inputShape: [9, 9, 2], filters: 3, kernelSize: [3, 2], strides: [2, 1], padding: 'valid' }),
        tf.layers.globalMaxPooling2d({ name: 'gmp' }),
        tf.layers.dense({ name: 'd', units: 2 }),
      ],
    });
    const saved = await save(m);
    const model = parseTfjsModel(saved.modelJson, saved.weightData);
    expect(summary(model.network)).toEqual(['c_input:input', 'c:conv2d', 'gmp:global-max-pool', 'd:dense']);
    expect(byName(model.network, 'c')).toMatchObject({ shape: [3, 2, 2, 3], strides: [2, 1], padding: 'valid' });
  });

  it('shards given one buffer per path, split across weight groups', async () => {
    const saved = await save(buildMlp());
    const specs = saved.modelJson.weightsManifest[0].weights as { name: string }[];
    const json = { ...saved.modelJson, weightsManifest: [
      { paths: ['g1-shard1of2.bin', 'g1-shard2of2.bin'], weights: specs.slice(0, 4) },
      { paths: ['g2.bin'], weights: specs.slice(4) },
    ] };
    const g1Bytes = (12 * 16 + 16 + 16 * 10 + 10) * 4;
    const d = saved.weightData;
    const shards = [d.slice(0, 100), d.slice(100, g1Bytes), d.slice(g1Bytes)];
    const model = parseTfjsModel(json, shards);
    expectTensorsAreModelWeights(model, saved);
    // also fine as one concatenated buffer
    expectTensorsAreModelWeights(parseTfjsModel(json, d), saved);
    // a truncated shard names its group's shards and the byte counts
    expectError(() => parseTfjsModel(json, [shards[0], shards[1].slice(0, 50), shards[2]]), 'E_MODEL',
      new RegExp(`shards 'g1-shard1of2.bin' \\+ 'g1-shard2of2.bin' is truncated: expected ${g1Bytes} bytes, found 150`));
    expectError(() => parseTfjsModel(json, [shards[0], shards[1]]), 'E_MODEL', /lists 3 shard file\(s\), got 2 buffer\(s\)/);
  });

  it('non-float32 weights pass through untouched', async () => {
    const saved = await save(buildMlp());
    const extra = new Int32Array([7, -3, 2147483647]);
    const bools = new Uint8Array([1, 0]);
    const json = structuredClone(saved.modelJson);
    json.weightsManifest[0].weights.push({ name: 'extra/step', shape: [3], dtype: 'int32' }, { name: 'extra/flags', shape: [2], dtype: 'bool', group: 'meta' });
    const data = concat([saved.weightData, extra.buffer, bools.buffer]);
    const model = parseTfjsModel(json, data);
    expect(model.weights.at(-2)).toMatchObject({ name: 'extra/step', dtype: 'int32', data: extra });
    expect(model.weights.at(-1)).toMatchObject({ name: 'extra/flags', dtype: 'bool', data: bools, group: 'meta' });
    const out = serializeTfjsModel(model, 'w.bin');
    expect(new Uint8Array(out.weightData)).toEqual(new Uint8Array(data));
    expect((out.modelJson as any).weightsManifest[0].paths).toEqual(['w.bin']);
    expect((out.modelJson as any).weightsManifest[0].weights.at(-1)).toEqual({ name: 'extra/flags', shape: [2], dtype: 'bool', group: 'meta' });
  });

  it('accepts a Keras-style model_config wrapper and a Sequential led by an InputLayer', async () => {
    const saved = await save(buildMlp());
    const topo = saved.modelJson.modelTopology;
    const layers = [
      { class_name: 'InputLayer', config: { batch_input_shape: [null, 12], dtype: 'float32', name: 'in' } },
      ...topo.config.layers,
    ];
    const json = { ...saved.modelJson, modelTopology: { keras_version: '2.15.0', backend: 'tensorflow', model_config: { class_name: 'Sequential', config: { name: 's', layers } } } };
    const model = parseTfjsModel(json, saved.weightData);
    expect(summary(model.network).slice(0, 3)).toEqual(['in:input', 'fc1:dense', 'fc1/relu:relu']);
  });
});

// ---------------------------------------------------------------------------------------
// bad files

describe('rejects corrupt and unsupported models', () => {
  let mlp: Saved;
  beforeAll(async () => {
    mlp = await save(buildMlp());
  });
  const edit = (f: (j: Record<string, any>) => void): Record<string, any> => {
    const j = structuredClone(mlp.modelJson);
    f(j);
    return j;
  };

  it('a truncated shard', () => {
    const n = mlp.weightData.byteLength;
    expectError(() => parseTfjsModel(mlp.modelJson, mlp.weightData.slice(0, n - 8)), 'E_MODEL',
      new RegExp(`^model.json: shard 'weights.bin' is truncated: expected ${n} bytes, found ${n - 8}$`));
    expectError(() => parseTfjsModel(mlp.modelJson, concat([mlp.weightData, new ArrayBuffer(4)])), 'E_MODEL', /is longer than its manifest says/);
  });

  it('quantized weights', () => {
    const j = edit((j) => { j.weightsManifest[0].weights[0].quantization = { dtype: 'uint8', scale: 0.01, min: -1 }; });
    expectError(() => parseTfjsModel(j, mlp.weightData), 'E_MODEL', /weight 'fc1\/kernel' is quantized \(uint8\)/);
  });

  it('a weight the layers need but the manifest does not list', () => {
    const j = edit((j) => { j.weightsManifest[0].weights[3].name = 'renamed/bias'; });
    expectError(() => parseTfjsModel(j, mlp.weightData), 'E_MODEL', /layer 'fc2' \(Dense\) needs weight 'fc2\/bias', which the weights manifest does not list/);
  });

  it('a weight with the wrong dtype or shape', () => {
    const j = edit((j) => { j.weightsManifest[0].weights[1].dtype = 'int32'; });
    expectError(() => parseTfjsModel(j, mlp.weightData), 'E_MODEL', /weight 'fc1\/bias' has dtype int32; enorm rescales float32 weights only/);
    const k = edit((j) => { j.weightsManifest[0].weights[0].shape = [16, 12]; });
    expectError(() => parseTfjsModel(k, mlp.weightData), 'E_MODEL', /weight 'fc1\/kernel' has shape \[16, 12\], expected \[\?, 16\]/);
    const u = edit((j) => { j.weightsManifest[0].weights[0].dtype = 'float16'; });
    expectError(() => parseTfjsModel(u, mlp.weightData), 'E_MODEL', /weight 'fc1\/kernel' has unsupported dtype "float16"/);
  });

  it('malformed JSON structure', () => {
    expectError(() => parseTfjsModel([], mlp.weightData), 'E_MODEL', /not a tfjs model/);
    expectError(() => parseTfjsModel(edit((j) => { j.format = 'graph-model'; }), mlp.weightData), 'E_MODEL', /format "graph-model" is not supported/);
    expectError(() => parseTfjsModel(edit((j) => { delete j.modelTopology; }), mlp.weightData), 'E_MODEL', /'modelTopology' is missing/);
    expectError(() => parseTfjsModel(edit((j) => { delete j.weightsManifest; }), mlp.weightData), 'E_MODEL', /'weightsManifest' is missing/);
    expectError(() => parseTfjsModel(edit((j) => { j.modelTopology.class_name = 'Graph'; }), mlp.weightData), 'E_MODEL', /class_name "Graph"/);
    expectError(() => parseTfjsModel(edit((j) => { delete j.modelTopology.config.layers[0].config.batch_input_shape; }), mlp.weightData),
      'E_MODEL', /the first layer 'fc1' has no batch_input_shape/);
  });

  it('unknown layer classes: LSTM and Reshape', async () => {
    const lstm = tf.sequential({ layers: [tf.layers.lstm({ name: 'lstm_1', inputShape: [5, 4], units: 3 }), tf.layers.dense({ name: 'd', units: 2 })] });
    const a = await save(lstm);
    expectError(() => parseTfjsModel(a.modelJson, a.weightData), 'E_LAYER_KIND', /^model.json: layer 'lstm_1' has class LSTM, which enorm cannot rescale$/);
    const reshape = tf.sequential({ layers: [tf.layers.dense({ name: 'd', inputShape: [4], units: 6 }), tf.layers.reshape({ name: 'rs', targetShape: [2, 3] })] });
    const b = await save(reshape);
    expectError(() => parseTfjsModel(b.modelJson, b.weightData, { source: 'x/model.json' }), 'E_LAYER_KIND', /^x\/model.json: layer 'rs' has class Reshape/);
  });

  it('unsupported activations and configurations', async () => {
    const j = edit((j) => { j.modelTopology.config.layers[1].config.activation = 'hard_sigmoid'; });
    expectError(() => parseTfjsModel(j, mlp.weightData), 'E_LAYER_KIND', /layer 'fc2' \(Dense\) uses activation "hard_sigmoid"/);
    const conv = await save(buildConvNet());
    const layers = () => structuredClone(conv.modelJson);
    const cf = layers();
    cf.modelTopology.config.layers[0].config.data_format = 'channels_first';
    expectError(() => parseTfjsModel(cf, conv.weightData), 'E_LAYER_KIND', /layer 'conv' \(Conv2D\): unsupported data_format "channels_first"/);
    const dil = layers();
    dil.modelTopology.config.layers[0].config.dilation_rate = [2, 2];
    expectError(() => parseTfjsModel(dil, conv.weightData), 'E_LAYER_KIND', /layer 'conv' \(Conv2D\): unsupported dilation_rate \[2, 2\]/);
    const axis = layers();
    axis.modelTopology.config.layers[1].config.axis = 1;
    expectError(() => parseTfjsModel(axis, conv.weightData), 'E_LAYER_KIND', /layer 'bn' \(BatchNormalization\): unsupported axis 1/);
    const axis3 = layers();
    axis3.modelTopology.config.layers[1].config.axis = 3; // the last axis of NHWC: fine
    expect(byName(parseTfjsModel(axis3, conv.weightData).network, 'bn').kind).toBe('batch-norm');
    const relu = tf.sequential({ layers: [tf.layers.dense({ name: 'd', inputShape: [3], units: 2 }), tf.layers.reLU({ name: 'capped', maxValue: 3 })] });
    const r = await save(relu);
    expectError(() => parseTfjsModel(r.modelJson, r.weightData), 'E_LAYER_KIND', /layer 'capped' \(ReLU\): unsupported max_value 3/);
    const deep = tf.sequential({ layers: [tf.layers.dense({ name: 'd', inputShape: [4, 3], units: 2 })] });
    const dd = await save(deep);
    expectError(() => parseTfjsModel(dd.modelJson, dd.weightData), 'E_LAYER_KIND', /layer 'd' \(Dense\) reads a rank-3 tensor/);
  });

  it('shared layers and outputs that feed other layers', async () => {
    const input = tf.input({ shape: [4], name: 'x' });
    const shared = tf.layers.dense({ name: 'shared', units: 4 });
    const twice = shared.apply(shared.apply(input)) as tf.SymbolicTensor;
    const s = await save(tf.model({ inputs: input, outputs: twice }));
    expectError(() => parseTfjsModel(s.modelJson, s.weightData), 'E_MODEL', /layer 'shared' is called at 2 places \(a shared layer\)/);

    const input2 = tf.input({ shape: [4], name: 'x2' });
    const hidden = tf.layers.dense({ name: 'hidden', units: 4, activation: 'relu' }).apply(input2) as tf.SymbolicTensor;
    const last = tf.layers.dense({ name: 'last', units: 2 }).apply(hidden) as tf.SymbolicTensor;
    const o = await save(tf.model({ inputs: input2, outputs: [hidden, last] }));
    expectError(() => parseTfjsModel(o.modelJson, o.weightData), 'E_MODEL', /output layer 'hidden' also feeds layer 'last'/);
  });
});

// ---------------------------------------------------------------------------------------
// hostile files and large models

describe('hostile model.json files', () => {
  const mlp = () => sequentialMlp([6, 5, 3]);
  const parse = (files: { modelJson: unknown; weights: Uint8Array }) => parseTfjsModel(files.modelJson, files.weights.slice().buffer);

  it('prototype names (constructor, toString, __proto__, hasOwnProperty) are unknown classes, activations and dtypes', () => {
    for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      const c = mlp();
      c.modelJson.modelTopology.config.layers[1].class_name = name;
      expectError(() => parse(c), 'E_LAYER_KIND', new RegExp(`^model.json: layer 'dense_2' has class ${name}, which enorm cannot rescale$`));
      const a = mlp();
      a.modelJson.modelTopology.config.layers[0].config.activation = name;
      expectError(() => parse(a), 'E_LAYER_KIND', new RegExp(`layer 'dense_1' \\(Dense\\) uses activation "${name}", which enorm cannot handle`));
      const d = mlp();
      d.modelJson.weightsManifest[0].weights[0].dtype = name;
      expectError(() => parse(d), 'E_MODEL', new RegExp(`weight 'dense_1/kernel' has unsupported dtype "${name}"`));
    }
  });

  it('deep nesting anywhere is E_MODEL naming the path, checked without recursion', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 200_000; i++) deep = [deep];
    const s = mlp();
    s.modelJson.weightsManifest[0].weights[0].shape = deep;
    expectError(() => parse(s), 'E_MODEL', /^model.json: 'weightsManifest\[0\]\.weights\[0\]\.shape\[0\]\[0\]\[0\]\.\.\.' nests deeper than 100 levels of arrays \/ objects$/);
    const k = mlp();
    k.modelJson.modelTopology.config.layers[0].config.kernel_initializer = { config: deep };
    expectError(() => parse(k), 'E_MODEL', /'modelTopology\.config\.layers\[0\]\.config\.kernel_initializer\.config\[0\]\.\.\.' nests deeper/);
    // 60 levels is fine (and is written back as it was).
    let ok: unknown = 1;
    for (let i = 0; i < 60; i++) ok = { a: ok };
    const m = mlp();
    m.modelJson.modelTopology.config.layers[0].config.kernel_initializer = ok;
    expect(parse(m).network.map((l) => l.kind)).toEqual(['input', 'dense', 'relu', 'dense']);
  });

  it('names from the file are quoted with control characters escaped and long names cut', () => {
    const n = mlp();
    n.modelJson.weightsManifest[0].weights[0].name = `k\u0000\u001b[2J${'y'.repeat(1000)}`;
    const e = expectError(() => parse(n), 'E_MODEL', /needs weight 'dense_1\/kernel'/);
    expect(e.message).not.toMatch(/[\u0000-\u001f]/);
    const long = mlp();
    long.modelJson.modelTopology.config.layers[1].class_name = `Bad\n${'z'.repeat(10_000)}`;
    const e2 = expectError(() => parse(long), 'E_LAYER_KIND', /has class Bad\\nz+\.\.\. \(10004 characters\), which enorm cannot rescale$/);
    expect(e2.message.length).toBeLessThan(200);
    const shape = mlp();
    shape.modelJson.weightsManifest[0].weights[0].shape = ['\u0007'.repeat(500)];
    expectError(() => parse(shape), 'E_MODEL', /has a malformed shape \["(\\u0007)+/);
  });
});

describe('topological order of large functional models', () => {
  /** The order the parser promises: repeatedly the first layer in file order whose inputs are all placed (O(n^2), for checking). */
  function firstReadyOrder(layers: { name: string; inbound_nodes: [string][][] }[]): string[] {
    const done = new Set<string>();
    const out: string[] = [];
    while (out.length < layers.length) {
      const next = layers.find((l) => !done.has(l.name) && l.inbound_nodes.every((node) => node.every((ref) => done.has(ref[0]))));
      if (!next) throw new Error('cycle');
      done.add(next.name);
      out.push(next.name);
    }
    return out;
  }
  const shuffled = <T>(items: T[], seed: number): T[] => {
    const rng = mulberry32(seed);
    const a = [...items];
    for (let i = a.length - 1; i > 0; i--) {
      const j = Math.floor(rng() * (i + 1));
      [a[i], a[j]] = [a[j], a[i]];
    }
    return a;
  };
  const order = (files: { modelJson: any; weights: Uint8Array }) => {
    const model = parseTfjsModel(files.modelJson, files.weights.slice().buffer);
    return model.network.map((l) => l.name as string);
  };

  it('a 20,002-layer chain of Dense / ReLU / Add listed in reverse comes out in chain order', () => {
    const blocks = 6667;
    const names = ['x', ...Array.from({ length: blocks }, (_, b) => [`d${b}`, `r${b}`, `a${b}`]).flat()];
    expect(order(functionalChain(blocks, 1, (layers) => [...layers].reverse()))).toEqual(names);
    expect(order(functionalChain(blocks))).toEqual(names);
  });

  it('any file order gives the first-ready-in-file-order order (stable), also for 3,000 shuffled layers', () => {
    for (const [blocks, seed] of [[4, 1], [30, 2], [1000, 3]]) {
      const files = functionalChain(blocks, 1, (layers) => shuffled(layers, seed));
      expect(order(files)).toEqual(firstReadyOrder(files.modelJson.modelTopology.config.layers));
    }
  });

  it('a cycle is E_MODEL naming a layer on it', () => {
    const files = functionalChain(3);
    const layers = files.modelJson.modelTopology.config.layers;
    layers[1].inbound_nodes = [[['a2', 0, 0, {}]]];
    expectError(() => order(files), 'E_MODEL', /the layers form a cycle \(layer 'd0' is on or after one\)/);
  });
});
