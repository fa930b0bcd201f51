/**
 * Node file access for ONNX models: the .onnx file and the external data files it names, read from
 * an untrusted folder (node-read.ts: regular files only, external paths confined to the model's
 * folder, sizes capped before reading), and written crash-safely beside the output
 * (atomic-write.ts: the external files first, then the .onnx file, whose rename commits).
 */
import { realpath } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { ENormError } from '../../errors.js';
import { writeAtomically, type AtomicWriteStep } from '../atomic-write.js';
import { FileReadProblem, lexicalShardProblem, locateShard, readRegularFile } from '../node-read.js';
import { printable, quote } from '../text.js';
import { encodeOnnxModel, onnxExternalLocations, readOnnxModel, type OnnxModel, type ReadOnnxModelOptions } from './index.js';

export interface ReadOnnxModelFileOptions extends Pick<ReadOnnxModelOptions, 'maxModelBytes'> {
  /** Largest total size of the external data files, in bytes; refused before any is read. Default 4 GiB (the Wasm engine's memory). */
  maxExternalBytes?: number;
}

export interface WriteOnnxModelFileOptions {
  /** Called (and awaited) before each step of the write; what it throws fails the write there (crash tests). */
  onStep?: (step: AtomicWriteStep) => void | Promise<void>;
}

const DEFAULT_MAX_MODEL_BYTES = 2 ** 31 - 1;
const DEFAULT_MAX_EXTERNAL_BYTES = 4 * 1024 ** 3;

/** realpath of the file each model was read from, so writeOnnxModelFile can refuse to overwrite it. */
const sourceFiles = new WeakMap<OnnxModel, string>();

/** Makes `to` (a model derived from `from`, e.g. BN-folded) remember the file `from` was read from. */
export function inheritSource(from: OnnxModel, to: OnnxModel): OnnxModel {
  const source = sourceFiles.get(from);
  if (source !== undefined) sourceFiles.set(to, source);
  return to;
}

function limit(value: number | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value <= 0) throw new ENormError('E_OPTION', `${name} must be a positive whole number of bytes, got ${quote(String(value), 30)}`);
  return value;
}

function readProblem(e: unknown, what: string, option: string, max: number): never {
  if (!(e instanceof FileReadProblem)) throw e;
  if (e.reason === 'too-large') throw new ENormError('E_MEMORY', `${what} ${e.message}, over the limit of ${max} bytes (option ${option})`);
  throw new ENormError(e.reason === 'no-memory' ? 'E_MEMORY' : 'E_MODEL', `${what} cannot be read: ${e.message}`);
}

/** Reads the external files `locations` from `folder`, each confined to it and their total capped. */
async function readExternal(src: string, folder: string, locations: string[], maxBytes: number): Promise<Map<string, Uint8Array>> {
  const folderReal = await realpath(folder);
  const found = [];
  let total = 0;
  for (const location of locations) {
    const what = `${src}: external data file ${quote(location)}`;
    const problem = lexicalShardProblem(location);
    if (problem) throw new ENormError('E_MODEL', `${what} ${problem}`);
    const at = await locateShard(folder, folderReal, location);
    if (!at.found) {
      const why = { missing: 'is missing', outside: "resolves outside the model's folder (a symlink?)", 'not-regular': 'is not a regular file' }[at.why];
      throw new ENormError('E_MODEL', `${what} ${why}`);
    }
    total += at.stats.size;
    if (total > maxBytes) throw new ENormError('E_MEMORY', `${src}: the external data files pass ${maxBytes} bytes at ${quote(location)} (option maxExternalBytes)`);
    found.push({ location, at });
  }
  const files = new Map<string, Uint8Array>();
  for (const { location, at } of found) {
    const bytes = await readRegularFile(at.real, { maxBytes, expected: at.stats }).catch((e) => readProblem(e, `${src}: external data file ${quote(location)}`, 'maxExternalBytes', maxBytes));
    files.set(location, bytes);
  }
  return files;
}

/** Reads an untrusted .onnx file and the external data files it names (inside its folder only). */
export async function readOnnxModelFile(path: string, options: ReadOnnxModelFileOptions = {}): Promise<OnnxModel> {
  const src = printable(path);
  const maxModel = limit(options.maxModelBytes, 'maxModelBytes', DEFAULT_MAX_MODEL_BYTES);
  const maxExternal = limit(options.maxExternalBytes, 'maxExternalBytes', DEFAULT_MAX_EXTERNAL_BYTES);
  const bytes = await readRegularFile(path, { maxBytes: maxModel }).catch((e) => readProblem(e, `model file '${src}'`, 'maxModelBytes', maxModel));
  const locations = onnxExternalLocations(bytes, { maxModelBytes: maxModel });
  const externalData = locations.length ? await readExternal(src, dirname(resolve(path)), locations, maxExternal) : undefined;
  const model = readOnnxModel(bytes, { maxModelBytes: maxModel, externalData });
  sourceFiles.set(model, await realpath(path));
  return model;
}

/**
 * Writes the balanced model to `path` and its external data files (those that hold a rescaled
 * tensor) beside it under their `location` names; resolves to the written paths, the model first.
 */
export async function writeOnnxModelFile(model: OnnxModel, path: string, options: WriteOnnxModelFileOptions = {}): Promise<string[]> {
  const out = resolve(path);
  const source = sourceFiles.get(model);
  const outReal = await realpath(out).catch(() => undefined);
  if (source !== undefined && outReal === source) {
    throw new ENormError('E_OPTION', `the output ${quote(printable(path))} is the model file that was read; write the balanced model to another file`);
  }
  const { bytes, external } = encodeOnnxModel(model);
  const outFolder = await realpath(dirname(out)).catch(() => undefined);
  if (external.size > 0 && source !== undefined && outFolder === dirname(source)) {
    throw new ENormError('E_OPTION', `the output ${quote(printable(path))} is in the model's folder, whose external data files would be overwritten; write it to another folder`);
  }
  const data = [...external].map(([name, file]) => {
    if (name.includes('/') || name === basename(out)) throw new ENormError('E_OPTION', `external data file ${quote(name)} cannot be written beside ${quote(printable(path))}: it is in a subfolder or has the model's name`);
    return { name, bytes: file };
  });
  return writeAtomically(dirname(out), { data, manifest: { name: basename(out), bytes }, onStep: options.onStep });
}
