/**
 * A tiny tfjs Sequential model (dense 4->3 relu, dense 3->2) built without tfjs, for the file
 * tests and the crash-test child process. Its 23 weights are `seed + i / 64`: exact in float32,
 * so a folder's weights say which write they came from.
 */
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readTfjsModelFile } from '../../src/model-io/files.js';
import { parseTfjsModel, type TfjsModel } from '../../src/model-io/tfjs/index.js';

export const WEIGHT_SPECS = [
  { name: 'h/kernel', shape: [4, 3], dtype: 'float32' },
  { name: 'h/bias', shape: [3], dtype: 'float32' },
  { name: 'o/kernel', shape: [3, 2], dtype: 'float32' },
  { name: 'o/bias', shape: [2], dtype: 'float32' },
];
export const WEIGHT_COUNT = 4 * 3 + 3 + 3 * 2 + 2;
export const WEIGHT_BYTES = WEIGHT_COUNT * 4;

export const TOPOLOGY = {
  class_name: 'Sequential',
  config: {
    name: 'tiny',
    layers: [
      { class_name: 'Dense', config: { name: 'h', units: 3, activation: 'relu', use_bias: true, batch_input_shape: [null, 4] } },
      { class_name: 'Dense', config: { name: 'o', units: 2, activation: 'linear', use_bias: true } },
    ],
  },
};

/** model.json's object; `manifest` replaces the weights manifest. */
export function modelJson(manifest: unknown = [{ paths: ['weights.bin'], weights: WEIGHT_SPECS }]): Record<string, unknown> {
  return { format: 'layers-model', modelTopology: TOPOLOGY, weightsManifest: manifest };
}

export function weightValues(seed: number): Float32Array {
  return Float32Array.from({ length: WEIGHT_COUNT }, (_, i) => seed + i / 64);
}

export function weightBytes(seed: number): Uint8Array {
  return new Uint8Array(weightValues(seed).buffer);
}

export function tinyModel(seed: number): TfjsModel {
  return parseTfjsModel(modelJson(), weightValues(seed).buffer as ArrayBuffer);
}

/** A model folder as an untrusted source would ship it: model.json (object or raw text) and shard files. */
export async function writeModelFolder(dir: string, json: unknown, shards: Record<string, Uint8Array | string> = {}): Promise<string> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'model.json'), typeof json === 'string' ? json : JSON.stringify(json));
  for (const [name, bytes] of Object.entries(shards)) {
    await mkdir(join(dir, name, '..'), { recursive: true });
    await writeFile(join(dir, name), bytes);
  }
  return join(dir, 'model.json');
}

/** Every weight value of the model in `dir`, read through readTfjsModelFile (so it must be consistent). */
export async function folderValues(dir: string): Promise<number[]> {
  const model = await readTfjsModelFile(join(dir, 'model.json'));
  return model.weights.flatMap((w) => Array.from(w.data as Float32Array));
}

/** The seed whose complete model `dir` holds; throws when it holds none or a mix. */
export async function folderSeed(dir: string): Promise<number> {
  const values = await folderValues(dir);
  const seed = values[0];
  if (values.length !== WEIGHT_COUNT || values.some((v, i) => v !== seed + i / 64)) throw new Error(`${dir} holds no complete model`);
  return seed;
}

/** The folder's entries, sorted. */
export async function entries(dir: string): Promise<string[]> {
  return (await readdir(dir)).sort();
}
