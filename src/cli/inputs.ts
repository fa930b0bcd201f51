/**
 * --inputs FILE: real check inputs instead of uniform random ones, from an untrusted file: a .npy
 * of float32 (npy.ts) or a JSON array (nested arrays of numbers: one example, or an array of
 * examples). The first axis is the batch; the rest must be the model's per-example input shape.
 */
import { readFile, stat } from 'node:fs/promises';
import { CliFailure } from './failure.js';
import { parseNpy, type NpyArray } from './npy.js';

export const INPUT_LIMITS = {
  /** Largest --inputs file read. */
  fileBytes: 256 * 2 ** 20,
  /** Deepest JSON nesting (a batch of 8-dimensional examples). */
  depth: 9,
};

/** The check's inputs: `count` examples of `shape`, example-major float32. */
export interface CheckInputs {
  data: Float32Array;
  count: number;
  shape: number[];
}

/** Reads FILE (.npy by its magic, else JSON), capped at INPUT_LIMITS.fileBytes. */
export async function readInputsFile(path: string): Promise<NpyArray> {
  let size: number;
  try {
    const s = await stat(path);
    if (!s.isFile()) throw new CliFailure('E_OPTION', `--inputs ${path}: not a regular file`);
    size = s.size;
  } catch (e) {
    if (e instanceof CliFailure) throw e;
    throw new CliFailure('E_OPTION', `--inputs ${path}: cannot read it (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if (size > INPUT_LIMITS.fileBytes) {
    throw new CliFailure('E_OPTION', `--inputs ${path}: ${size} bytes, over the limit of ${INPUT_LIMITS.fileBytes} bytes`);
  }
  const bytes = new Uint8Array(await readFile(path));
  return bytes[0] === 0x93 ? parseNpy(bytes, `--inputs ${path}`) : parseJsonInputs(new TextDecoder().decode(bytes), `--inputs ${path}`);
}

/** A JSON array of finite numbers, rectangular at every level (nested arrays; no objects). */
export function parseJsonInputs(text: string, what: string): NpyArray {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new CliFailure('E_OPTION', `${what}: neither a .npy file nor valid JSON`);
  }
  const shape: number[] = [];
  for (let v = value; Array.isArray(v); v = v[0]) {
    if (shape.length >= INPUT_LIMITS.depth) throw new CliFailure('E_OPTION', `${what}: arrays nest deeper than ${INPUT_LIMITS.depth} levels`);
    shape.push(v.length);
    if (v.length === 0) break;
  }
  if (shape.length === 0) throw new CliFailure('E_OPTION', `${what}: the JSON is not an array of numbers`);
  const count = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(count);
  let at = 0;
  // Walks level by level: every array at depth k has shape[k] entries, the last level holds numbers.
  const walk = (v: unknown, depth: number, path: string): void => {
    if (depth === shape.length) {
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new CliFailure('E_OPTION', `${what}: entry ${path} is ${typeof v === 'number' ? v : (v === null ? 'null' : Array.isArray(v) ? 'an array' : `a ${typeof v}`)}, not a finite number`);
      data[at++] = v;
      return;
    }
    if (!Array.isArray(v) || v.length !== shape[depth]) {
      throw new CliFailure('E_OPTION', `${what}: entry ${path || '[]'} is not an array of ${shape[depth]} (the arrays must be rectangular)`);
    }
    for (let i = 0; i < v.length; i++) walk(v[i], depth + 1, `${path}[${i}]`);
  };
  walk(value, 0, '');
  return { shape, data };
}

const shapeText = (s: readonly number[]) => `[${s.map((d) => (d > 0 ? d : '?')).join(', ')}]`;
const fileShapeText = (s: readonly number[]) => `[${s.join(', ')}]`;
const fits = (file: readonly number[], model: readonly number[]) => file.length === model.length && file.every((d, i) => !(model[i] > 0) || d === model[i]);

/**
 * The examples in `file` for a model whose per-example input shape is `model` (-1 where open):
 * the file is one example of that shape, or a batch of them along its first axis. Open
 * dimensions take the file's sizes. Every value must be finite.
 */
export function checkInputsFor(file: NpyArray, model: readonly number[], what: string): CheckInputs {
  let shape: number[];
  let count: number;
  if (fits(file.shape.slice(1), model)) { shape = file.shape.slice(1); count = file.shape[0]; }
  else if (fits(file.shape, model)) { shape = file.shape.slice(); count = 1; }
  else {
    throw new CliFailure('E_SHAPE', `${what}: its shape ${fileShapeText(file.shape)} is neither one input of the model's shape ${shapeText(model)} nor a batch [N, ${shapeText(model).slice(1)}`);
  }
  if (count === 0 || shape.some((d) => d === 0)) throw new CliFailure('E_SHAPE', `${what}: it holds no input values (shape ${fileShapeText(file.shape)})`);
  const bad = file.data.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new CliFailure('E_NONFINITE', `${what}: input value ${bad} is ${file.data[bad]}`);
  return { data: file.data, count, shape };
}
