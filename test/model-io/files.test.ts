import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENormError, type ENormErrorCode } from '../../src/errors.js';
import type { Layer } from '../../src/network/layers.js';
import { readTfjsModelFile, writeTfjsModelFile } from '../../src/model-io/files.js';
import { parseTfjsModel, serializeTfjsModel, type TfjsModel } from '../../src/model-io/tfjs/index.js';

const DEFAULT_MODEL = fileURLToPath(new URL('../../models/mnist-mlp/model.json', import.meta.url));
let root: string;
let counter = 0;
const freshDir = () => join(root, `case-${++counter}`);

/** A small seeded Sequential MLP, saved in memory and parsed. */
async function smallModel(seed = 1): Promise<{ tfModel: tf.LayersModel; model: TfjsModel }> {
  const tfModel = tf.sequential({
    layers: [
      tf.layers.dense({ name: 'h', inputShape: [5], units: 6, activation: 'relu' }),
      tf.layers.dense({ name: 'o', units: 3, activation: 'softmax' }),
    ],
  });
  tfModel.setWeights(tfModel.weights.map((w, i) => tf.randomUniform(w.shape as number[], -1, 1, 'float32', seed * 10 + i)));
  let model: TfjsModel | undefined;
  await tfModel.save(tf.io.withSaveHandler(async (a) => {
    const parts = ([] as ArrayBuffer[]).concat(a.weightData ?? []);
    const bytes = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
    parts.reduce((at, p) => (bytes.set(new Uint8Array(p), at), at + p.byteLength), 0);
    const json = { format: a.format, generatedBy: a.generatedBy, convertedBy: a.convertedBy, modelTopology: a.modelTopology, weightsManifest: [{ paths: ['weights.bin'], weights: a.weightSpecs }] };
    model = parseTfjsModel(JSON.parse(JSON.stringify(json)), bytes.buffer);
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  return { tfModel, model: model! };
}

/** The name writeTfjsModelFile gives the model's weights: weights.<first 16 hex digits of their sha256>.bin. */
function weightsFileOf(model: TfjsModel): string {
  const bytes = new Uint8Array(serializeTfjsModel(model).weightData);
  return `weights.${createHash('sha256').update(bytes).digest('hex').slice(0, 16)}.bin`;
}

/** The weights file the model.json in `dir` names. */
async function namedWeightsFile(dir: string): Promise<string> {
  return JSON.parse(await readFile(join(dir, 'model.json'), 'utf8')).weightsManifest[0].paths[0];
}

async function expectRejects(p: Promise<unknown>, code: ENormErrorCode, pattern: RegExp): Promise<void> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e).toBeInstanceOf(ENormError);
  expect((e as ENormError).code).toBe(code);
  expect((e as ENormError).message).toMatch(pattern);
  expect((e as ENormError).message).not.toContain('\n');
}

async function loadFromDisk(dir: string): Promise<tf.LayersModel> {
  const json = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8'));
  const buf = await readFile(join(dir, json.weightsManifest[0].paths[0]));
  const weightData = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
  return tf.loadLayersModel(tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: json.weightsManifest[0].weights, weightData }));
}

beforeAll(async () => {
  await tf.setBackend('cpu');
  root = await mkdtemp(join(tmpdir(), 'enorm-model-io-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('writeTfjsModelFile / readTfjsModelFile', () => {
  it('writes model.json + weights.<hash>.bin into a new directory and reads them back', async () => {
    const { tfModel, model } = await smallModel();
    const dir = join(freshDir(), 'nested', 'out');
    const paths = await writeTfjsModelFile(model, dir);
    const weightsFile = weightsFileOf(model);
    expect(weightsFile).toMatch(/^weights\.[0-9a-f]{16}\.bin$/);
    expect(paths).toEqual([join(dir, 'model.json'), join(dir, weightsFile)]);
    expect((await readdir(dir)).sort()).toEqual(['model.json', weightsFile]);
    expect(await namedWeightsFile(dir)).toBe(weightsFile);
    expect((await stat(join(dir, weightsFile))).size).toBe((5 * 6 + 6 + 6 * 3 + 3) * 4);

    const back = await readTfjsModelFile(join(dir, 'model.json'));
    expect(back.network.map((l) => l.kind)).toEqual(['input', 'dense', 'relu', 'dense', 'activation']);
    expect(back.weights.map((w) => [w.name, Array.from(w.data)])).toEqual(model.weights.map((w) => [w.name, Array.from(w.data)]));

    const x = tf.randomUniform([4, 5], -1, 1, 'float32', 3);
    const reloaded = await loadFromDisk(dir);
    expect((reloaded.predict(x) as tf.Tensor).dataSync()).toEqual((tfModel.predict(x) as tf.Tensor).dataSync());
  });

  it('overwrites an earlier model with in-place edits', async () => {
    const { model } = await smallModel(2);
    const dir = freshDir();
    await writeTfjsModelFile(model, dir);
    const first = weightsFileOf(model);
    const h = model.network.find((l) => l.name === 'h') as Extract<Layer, { kind: 'dense' }>;
    h.weight[0] = 123.5;
    await writeTfjsModelFile(model, dir);
    const second = weightsFileOf(model);
    expect(second).not.toBe(first);
    // the first write's weights file, named by the replaced model.json, is removed
    expect((await readdir(dir)).sort()).toEqual(['model.json', second]);
    const back = await readTfjsModelFile(join(dir, 'model.json'));
    expect((back.network.find((l) => l.name === 'h') as Extract<Layer, { kind: 'dense' }>).weight[0]).toBe(123.5);
    expect((await loadFromDisk(dir)).getLayer('h').getWeights()[0].dataSync()[0]).toBe(123.5);
  });

  it('a failed write leaves no partial files (new directory)', async () => {
    const { model } = await smallModel(3);
    const dir = freshDir();
    // model.json is an existing non-empty directory: the final rename fails
    await mkdir(join(dir, 'model.json', 'blocker'), { recursive: true });
    await expectRejects(writeTfjsModelFile(model, dir), 'E_MODEL', new RegExp(`cannot write the model to '${dir}'`));
    expect(await readdir(dir)).toEqual(['model.json']);
  });

  it('a failed write restores the weights.bin that was there', async () => {
    const { model } = await smallModel(4);
    const dir = freshDir();
    await mkdir(join(dir, 'model.json', 'blocker'), { recursive: true });
    await writeFile(join(dir, 'weights.bin'), 'old weights');
    await expectRejects(writeTfjsModelFile(model, dir), 'E_MODEL', /cannot write the model/);
    expect((await readdir(dir)).sort()).toEqual(['model.json', 'weights.bin']);
    expect(await readFile(join(dir, 'weights.bin'), 'utf8')).toBe('old weights');
  });

  it('a directory path that is a file', async () => {
    const { model } = await smallModel(5);
    const file = join(root, 'plain-file');
    await writeFile(file, 'x');
    await expectRejects(writeTfjsModelFile(model, file), 'E_MODEL', /cannot write the model to '.*plain-file'/);
    expect(await readFile(file, 'utf8')).toBe('x');
  });
});

describe('readTfjsModelFile rejects bad files', () => {
  let good: string;
  beforeAll(async () => {
    good = freshDir();
    await writeTfjsModelFile((await smallModel(6)).model, good);
  });

  it('a missing model.json', async () => {
    const path = join(root, 'nowhere', 'model.json');
    await expectRejects(readTfjsModelFile(path), 'E_MODEL', /model file '.*nowhere\/model.json' cannot be read: file not found/);
  });

  it('a missing shard file', async () => {
    const dir = freshDir();
    await mkdir(dir);
    await writeFile(join(dir, 'model.json'), await readFile(join(good, 'model.json')));
    await expectRejects(readTfjsModelFile(join(dir, 'model.json')), 'E_MODEL',
      new RegExp(`weight shard '${(await namedWeightsFile(good)).replace(/\./g, '\\.')}' cannot be read: file not found \\(weightsManifest\\[0\\]\\.paths\\[0\\]\\)$`));
  });

  it('a JSON syntax error', async () => {
    const dir = freshDir();
    await mkdir(dir);
    const text = await readFile(join(good, 'model.json'), 'utf8');
    await writeFile(join(dir, 'model.json'), text.slice(0, text.length / 2));
    await expectRejects(readTfjsModelFile(join(dir, 'model.json')), 'E_MODEL', /model.json: not valid JSON \(/);
  });

  it('a truncated shard file', async () => {
    const dir = freshDir();
    await mkdir(dir);
    await writeFile(join(dir, 'model.json'), await readFile(join(good, 'model.json')));
    const name = await namedWeightsFile(good);
    const w = await readFile(join(good, name));
    await writeFile(join(dir, name), w.subarray(0, w.length - 12));
    await expectRejects(readTfjsModelFile(join(dir, 'model.json')), 'E_MODEL',
      new RegExp(`model.json: shard '${name.replace(/\./g, '\\.')}' is truncated: expected ${w.length} bytes, found ${w.length - 12}$`));
  });
});

describe('the embedded default model (models/mnist-mlp)', () => {
  it('parses into dense(784->256), relu, dense, relu, dense, softmax', async () => {
    const model = await readTfjsModelFile(DEFAULT_MODEL);
    expect(model.inputShape).toEqual([784]);
    const net = model.network.filter((l) => l.kind !== 'input');
    expect(net.map((l) => (l.kind === 'activation' ? `activation:${l.fn}` : l.kind))).toEqual(['dense', 'relu', 'dense', 'relu', 'dense', 'activation:softmax']);
    const dense = net.filter((l): l is Extract<Layer, { kind: 'dense' }> => l.kind === 'dense');
    expect(dense.map((l) => l.shape)).toEqual([[784, 256], [256, 128], [128, 10]]);
    expect(dense.every((l) => l.layout === 'io' && l.bias !== undefined && l.weight.every(Number.isFinite))).toBe(true);
    expect(model.weights.every((w) => w.dtype === 'float32')).toBe(true);
  });

  it('is a trained classifier: tfjs, loading what enorm writes back, gets most digits right', async () => {
    const model = await readTfjsModelFile(DEFAULT_MODEL);
    const { modelJson, weightData } = serializeTfjsModel(model) as { modelJson: any; weightData: ArrayBuffer };
    const net = await tf.loadLayersModel(tf.io.fromMemory({ modelTopology: modelJson.modelTopology, weightSpecs: modelJson.weightsManifest[0].weights, weightData }));
    const mnist = createRequire(import.meta.url)('mnist') as Record<number, { get(i: number): number[] }>;
    const pixels: number[][] = [];
    const labels: number[] = [];
    for (let digit = 0; digit < 10; digit++) {
      for (let i = 0; i < 30; i++) {
        pixels.push(mnist[digit].get(i * 7));
        labels.push(digit);
      }
    }
    const guesses = (net.predict(tf.tensor2d(pixels)) as tf.Tensor).argMax(1).dataSync();
    const right = labels.filter((l, i) => guesses[i] === l).length;
    expect(right / labels.length).toBeGreaterThan(0.9);
  });
});
