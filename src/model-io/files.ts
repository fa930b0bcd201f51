/**
 * Node file access for tfjs layers models: model.json plus the weight shards it names, read from
 * an untrusted folder (node-read.ts: regular files inside the folder only, sizes checked before
 * any shard is read) and written crash-safely (atomic-write.ts: one rename commits).
 */
import { createHash } from 'node:crypto';
import { realpath } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ENormError } from '../errors.js';
import { writeAtomically, type AtomicWriteStep } from './atomic-write.js';
import { FileReadProblem, lexicalShardProblem, locateShard, readRegularFile } from './node-read.js';
import { firstLine, printable, quote } from './text.js';
import { parseTfjsModel, serializeTfjsModel, type TfjsModel } from './tfjs/index.js';

export interface ReadTfjsModelOptions {
  /** Largest model.json accepted, in bytes; refused before it is read. Default 64 MiB. */
  maxJsonBytes?: number;
  /** Largest total size of the weight shards, in bytes; refused before any is read. Default 4 GiB (the Wasm engine's memory). */
  maxWeightBytes?: number;
}

export interface WriteTfjsModelOptions {
  /** The folder the model was read from, refused as the output. Models from readTfjsModelFile remember theirs. */
  sourceDir?: string;
  /** Called (and awaited) before each step of the write; what it throws fails the write there (crash tests). */
  onStep?: (step: AtomicWriteStep) => void | Promise<void>;
}

const MIB = 1024 * 1024;
const DEFAULT_MAX_JSON_BYTES = 64 * MIB;
const DEFAULT_MAX_WEIGHT_BYTES = 4096 * MIB;
const DTYPE_BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, complex64: 8 };
const STRING_MIN_BYTES = 4; // a string element is a uint32 length, then that many bytes
/** Weight files this writer names (content hash), and the plain name other tools use. */
const WEIGHTS_FILE = /^weights\.[0-9a-f]{16}\.bin$/;
const PLAIN_WEIGHTS_FILE = 'weights.bin';

/** realpath of the folder each model was read from, so writeTfjsModelFile can refuse it. */
const sourceFolders = new WeakMap<TfjsModel, string>();

function byteLimit(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new ENormError('E_OPTION', `${name} must be a positive whole number of bytes, got ${quote(String(value), 30)}`);
  }
  return value;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

interface ShardGroup {
  index: number;
  paths: string[];
  /** What the group's entries occupy: product(shape) x bytes of dtype; a lower bound when a dtype is 'string'. */
  need?: { bytes: number; exact: boolean };
}

function groupNeed(weights: unknown[]): ShardGroup['need'] {
  let bytes = 0;
  let exact = true;
  for (const w of weights) {
    if (!isObject(w) || (w.quantization !== undefined && w.quantization !== null)) return undefined;
    const shape = w.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) return undefined;
    const count = (shape as number[]).reduce((a, b) => a * b, 1);
    if (w.dtype === 'string') {
      bytes += count * STRING_MIN_BYTES;
      exact = false;
    } else if (typeof w.dtype === 'string' && Object.hasOwn(DTYPE_BYTES, w.dtype)) {
      bytes += count * DTYPE_BYTES[w.dtype];
    } else {
      return undefined;
    }
  }
  return { bytes, exact };
}

/** The manifest's groups, or undefined where its structure is malformed (parseTfjsModel says how). */
function shardGroups(json: unknown): ShardGroup[] | undefined {
  const manifest = isObject(json) ? json.weightsManifest : undefined;
  if (!Array.isArray(manifest)) return undefined;
  const groups: ShardGroup[] = [];
  for (const [index, g] of manifest.entries()) {
    if (!isObject(g) || !Array.isArray(g.paths) || !Array.isArray(g.weights)) return undefined;
    if (!g.paths.every((p) => typeof p === 'string' && p !== '')) return undefined;
    groups.push({ index, paths: g.paths as string[], need: groupNeed(g.weights) });
  }
  return groups;
}

/** parseTfjsModel, with its messages made printable and short: they quote names from the file. */
function parseUntrusted(json: unknown, shards: ArrayBuffer[], source: string): TfjsModel {
  try {
    return parseTfjsModel(json, shards, { source });
  } catch (e) {
    if (!(e instanceof ENormError)) throw new ENormError('E_MODEL', `${printable(source)}: ${firstLine(e)}`);
    const message = firstLine(e, 400);
    if (message === e.message) throw e;
    throw new ENormError(e.code, message, e.details);
  }
}

async function readModelJson(path: string, src: string, maxBytes: number): Promise<unknown> {
  let bytes: Uint8Array;
  try {
    bytes = await readRegularFile(path, { maxBytes });
  } catch (e) {
    if (!(e instanceof FileReadProblem)) throw e;
    if (e.reason === 'too-large') {
      throw new ENormError('E_MEMORY', `model file '${src}' ${e.message}, over the limit of ${maxBytes} bytes (option maxJsonBytes)`);
    }
    throw new ENormError(e.reason === 'no-memory' ? 'E_MEMORY' : 'E_MODEL', `model file '${src}' cannot be read: ${e.message}`);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes); // a leading BOM is dropped
  } catch {
    throw new ENormError('E_MODEL', `${src}: not valid JSON (not UTF-8 text)`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ENormError('E_MODEL', `${src}: not valid JSON (${firstLine(e, 100)})`);
  }
}

function shardLabel(paths: string[]): string {
  return paths.length === 1 ? `shard ${quote(paths[0], 60)}` : `shards ${paths.slice(0, 4).map((p) => quote(p, 60)).join(' + ')}${paths.length > 4 ? ` + ${paths.length - 4} more` : ''}`;
}

/**
 * Reads model.json and the weight shards it names. The folder is untrusted: every shard must
 * resolve, symlinks followed, to a regular file inside model.json's folder; sizes are checked
 * against the manifest before any shard is read; each file is read exactly at its fstat'd size.
 */
export async function readTfjsModelFile(modelJsonPath: string, options: ReadTfjsModelOptions = {}): Promise<TfjsModel> {
  const maxJsonBytes = byteLimit(options.maxJsonBytes, 'maxJsonBytes', DEFAULT_MAX_JSON_BYTES);
  const maxWeightBytes = byteLimit(options.maxWeightBytes, 'maxWeightBytes', DEFAULT_MAX_WEIGHT_BYTES);
  const src = printable(modelJsonPath);
  const json = await readModelJson(modelJsonPath, src, maxJsonBytes);
  const groups = shardGroups(json);
  if (!groups) {
    parseUntrusted(json, [], modelJsonPath); // throws the manifest's problem
    throw new ENormError('E_MODEL', `${src}: 'weightsManifest' is malformed`);
  }
  const entry = (g: ShardGroup, i: number) => `weightsManifest[${g.index}].paths[${i}] ${quote(g.paths[i], 60)}`;

  // 1. what the manifest says, before the file system is touched
  for (const g of groups) {
    g.paths.forEach((p, i) => {
      const problem = lexicalShardProblem(p);
      if (problem) throw new ENormError('E_MODEL', `${src}: ${entry(g, i)} ${problem}`);
    });
  }

  // 2. where each shard is, and its size
  const folder = dirname(modelJsonPath);
  const folderReal = await realpath(folder).catch((e) => {
    throw new ENormError('E_MODEL', `model file '${src}': its folder cannot be resolved (${firstLine(e)})`);
  });
  const shards: { label: string; real: string; stats: import('node:fs').Stats }[] = [];
  let total = 0;
  for (const g of groups) {
    let found = 0;
    for (let i = 0; i < g.paths.length; i++) {
      const at = await locateShard(folder, folderReal, g.paths[i]).catch((e) => {
        throw new ENormError('E_MODEL', `${src}: ${entry(g, i)} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
      });
      if (!at.found) {
        const message = at.why === 'missing' ? `weight shard ${quote(g.paths[i], 60)} cannot be read: file not found (weightsManifest[${g.index}].paths[${i}])`
          : at.why === 'not-regular' ? `${entry(g, i)} is not a regular file`
            : `${entry(g, i)} does not resolve to a regular file inside the model's folder`;
        throw new ENormError('E_MODEL', `${src}: ${message}`);
      }
      shards.push({ label: entry(g, i), real: at.real, stats: at.stats });
      found += at.stats.size;
    }
    // 3. sizes against the manifest, per group (groups it cannot size are left to parseTfjsModel)
    const need = g.need;
    if (need && (need.exact ? found !== need.bytes : found < need.bytes)) {
      const how = found < need.bytes ? 'is truncated' : 'is longer than its manifest says';
      throw new ENormError('E_MODEL', `${src}: ${shardLabel(g.paths)} ${how}: expected ${need.exact ? '' : 'at least '}${need.bytes} bytes, found ${found}`);
    }
    total += found;
  }
  if (total > maxWeightBytes) {
    throw new ENormError('E_MEMORY', `${src}: the weight shards hold ${total} bytes, over the limit of ${maxWeightBytes} bytes (option maxWeightBytes; the Wasm engine holds at most 4 GiB)`);
  }

  // 4. read each shard exactly at its checked size, from the very file that was checked
  const buffers: ArrayBuffer[] = [];
  for (const s of shards) {
    try {
      buffers.push((await readRegularFile(s.real, { maxBytes: s.stats.size, noFollow: true, expected: s.stats })).buffer as ArrayBuffer);
    } catch (e) {
      if (!(e instanceof FileReadProblem)) throw e;
      throw new ENormError(e.reason === 'no-memory' ? 'E_MEMORY' : 'E_MODEL', `${src}: ${s.label} cannot be read: ${e.message}`);
    }
  }
  const model = parseUntrusted(json, buffers, modelJsonPath);
  sourceFolders.set(model, folderReal);
  return model;
}

/** The shard paths a model.json names (none where it cannot be parsed). */
function manifestReferences(manifestBytes: Uint8Array | undefined): string[] {
  if (!manifestBytes) return [];
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder().decode(manifestBytes));
  } catch {
    return [];
  }
  const manifest = isObject(json) ? json.weightsManifest : undefined;
  if (!Array.isArray(manifest)) return [];
  return manifest
    .flatMap((g: unknown) => (isObject(g) && Array.isArray(g.paths) ? g.paths : []))
    .filter((p): p is string => typeof p === 'string');
}

/** The only files the writer removes once no model.json names them: its own and the plain weights.bin. */
function isWeightsFile(name: string): boolean {
  return WEIGHTS_FILE.test(name) || name === PLAIN_WEIGHTS_FILE;
}

/**
 * Writes `dir/model.json` and `dir/weights.<first 16 hex digits of the weights' sha256>.bin`
 * (creating dir). The rename of model.json is the only commit point (see atomic-write.ts); the
 * weight files the old model.json named are removed after it. Refuses the folder the model was
 * read from. Resolves to the written paths: model.json, then the weights file.
 */
export async function writeTfjsModelFile(model: TfjsModel, dir: string, options: WriteTfjsModelOptions = {}): Promise<string[]> {
  const source = options.sourceDir !== undefined ? await realpath(options.sourceDir).catch(() => undefined) : sourceFolders.get(model);
  if (source !== undefined && (await realpath(dir).catch(() => undefined)) === source) {
    throw new ENormError('E_MODEL', `cannot write the model to '${dir}': it is the folder the model was read from (-o must not be the input model's folder)`);
  }
  const { modelJson, weightData } = serializeTfjsModel(model, PLAIN_WEIGHTS_FILE);
  const weights = new Uint8Array(weightData);
  const weightsName = `weights.${createHash('sha256').update(weights).digest('hex').slice(0, 16)}.bin`;
  // serializeTfjsModel writes one weight group, in one shard; it is renamed after its content.
  const groups = (modelJson as { weightsManifest: { paths: string[] }[] }).weightsManifest;
  if (groups.length !== 1) throw new ENormError('E_MODEL', `cannot write the model to '${dir}': expected one weight group from serializeTfjsModel, got ${groups.length}`);
  groups[0].paths = [weightsName];
  return writeAtomically(dir, {
    data: [{ name: weightsName, bytes: weights }],
    manifest: { name: 'model.json', bytes: new TextEncoder().encode(JSON.stringify(modelJson)) },
    references: manifestReferences,
    removable: isWeightsFile,
    onStep: options.onStep,
  });
}
