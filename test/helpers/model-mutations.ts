/**
 * Mutations of a tfjs model folder (model.json, its weights manifest, the shard bytes), as
 * plain data so that a failing case prints as a readable, replayable list. applyMutations
 * turns a seed and a list into a CasePlan (fuzz-mutation-arbs.ts generates the lists); fuzz-case-files.ts writes it to disk, the
 * in-memory fuzzer hands it to parseTfjsModel.
 */
import type { Seed } from './fuzz-seeds.js';
import { allPaths, cloneTree, deepText, deleteAt, getAt, Raw, serializeTree, setAt } from './fuzz-json-tree.js';

/** Replaced by the case folder's absolute path when written (absolute shard paths). */
export const ROOT = '@@CASE_ROOT@@';
/** Next to the model folder: its bytes must never reach the output, its size and text never an error message. */
export const SECRET_TEXT_NAME = 'secret.txt';
/** Next to the model folder, as many bytes as the seed's output bias: a valid shard if enorm followed a path outside. */
export const SECRET_BIN_NAME = 'secret.bin';

const NUMERIC_KEYS = new Set(['units', 'filters', 'kernel_size', 'strides', 'pool_size', 'batch_input_shape', 'batch_shape', 'shape',
  'depth_multiplier', 'epsilon', 'axis', 'rate', 'momentum', 'dilation_rate', 'alpha', 'max_value', 'negative_slope', 'threshold']);
const DEEP_KEYS = new Set(['shape', 'dtype', 'activation', 'format', 'class_name', 'batch_input_shape', 'inbound_nodes', 'paths', 'name', 'padding', 'config']);
const DTYPES = ['int32', 'bool', 'complex64', 'string', 'float16', 'uint8', 'float64', 'constructor', 'FLOAT32', null, 5] as const;
const FLOATS = [NaN, Infinity, -Infinity, 3.4e38, -3.4e38, 1e-45, 1e-40, 1e30, -0, 1e20] as const;

export type Mutation =
  | { kind: 'replace-node'; at: number; value: unknown }
  | { kind: 'bad-number'; at: number; token: string }
  | { kind: 'deep'; at: number; onlyNamedKeys: boolean; depth: number; shape: 'array' | 'object' }
  | { kind: 'proto-word'; word: string; target: 'class_name' | 'activation' | 'dtype' | 'padding' | 'format' | 'topology-class' | 'layer-name' | 'weight-name' | 'config-key' | 'top-key'; at: number; value: unknown }
  | { kind: 'delete-key'; at: number }
  | { kind: 'duplicate-layer'; at: number; rename: boolean }
  | { kind: 'inbound'; at: number; op: 'dangling' | 'self' | 'cycle' | 'empty' | 'shared' | 'twice' | 'index' | 'not-array' | 'outputs' | 'inputs' }
  | { kind: 'batch-shape'; value: unknown }
  | { kind: 'weird-string'; at: number; value: string; renameLayer: boolean }
  | { kind: 'model-text'; variant: 'not-json' | 'binary' | 'empty' | 'bom' | 'null' | 'array' | 'string' | 'infinity' | 'utf16' | 'large' | 'deep' | 'bad-utf8'; bytes: number[] }
  | { kind: 'shard-path'; at: number; target: string }
  | { kind: 'exfil'; via: 'parent' | 'absolute' | 'symlink' | 'symlink-dir' | 'dot-dot' }
  | { kind: 'manifest-entry'; at: number; op: 'shape' | 'dtype' | 'duplicate' | 'delete' | 'rename' | 'quantization' | 'group' | 'split-shard' | 'swap' | 'paths-empty' | 'paths-twice'; value: unknown }
  | { kind: 'shard-bytes'; op: 'truncate' | 'extend' | 'empty' | 'set-float' | 'random-bytes'; at: number; value: number; bytes: number[] };

/** A file system entry the case needs besides model.json and weights.bin; paths relative to the case root. */
export type ExtraEntry =
  | { path: string; kind: 'fifo' | 'dir' }
  | { path: string; kind: 'file'; bytes: Uint8Array }
  | { path: string; kind: 'symlink'; target: string };

export interface CasePlan {
  seed: Seed['name'];
  /** model.json as a tree (Raw markers allowed); ignored when `text` is set. */
  json: unknown;
  /** The whole model.json file, when a mutation replaced it. */
  text?: Uint8Array;
  /** model/weights.bin; `shardChanged` false: the seed's bytes. */
  shard: Uint8Array;
  shardChanged: boolean;
  /** Other shards, relative to the model folder. */
  shards: Map<string, Uint8Array>;
  extras: ExtraEntry[];
  /** The bytes of secret.bin: finite float32 values no seed holds, as many as the seed's output bias. */
  secretBin: Uint8Array;
  /** Kinds of the mutations that applied (a mutation with no target is skipped). */
  applied: string[];
}

// ---------------------------------------------------------------------------------------
// applying

type Obj = Record<string, unknown>;
type Entry = { name: string; shape: unknown; dtype: unknown; [k: string]: unknown };
type Group = { paths: unknown[]; weights: Entry[] };
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Raw);
const nth = <T>(list: readonly T[], at: number): T | undefined => (list.length ? list[at % list.length] : undefined);

function layersOf(json: unknown): Obj[] {
  const t = isObj(json) ? json.modelTopology : undefined;
  const cfg = isObj(t) ? (isObj(t.model_config) ? t.model_config.config : t.config) : undefined;
  const layers = isObj(cfg) ? cfg.layers : undefined;
  return Array.isArray(layers) ? layers.filter(isObj) : [];
}
function groupsOf(json: unknown): Group[] {
  const m = isObj(json) ? json.weightsManifest : undefined;
  return Array.isArray(m) ? m.filter((g): g is Group => isObj(g) && Array.isArray(g.paths) && Array.isArray(g.weights)) : [];
}
const entriesOf = (json: unknown) => groupsOf(json).flatMap((g) => g.weights.filter(isObj)) as Entry[];
const layerName = (l: Obj): string | undefined => (typeof l.name === 'string' ? l.name : isObj(l.config) && typeof l.config.name === 'string' ? l.config.name : undefined);
const refsOf = (l: Obj): unknown[][] => (Array.isArray(l.inbound_nodes) ? l.inbound_nodes.filter(Array.isArray).flat().filter(Array.isArray) : []);

/** Renames layer `from` everywhere it is named: the layer, inbound refs, input/output lists, weight names. */
function renameLayer(json: unknown, from: string, to: string): void {
  for (const l of layersOf(json)) {
    if (layerName(l) === from) {
      if ('name' in l) l.name = to;
      if (isObj(l.config)) l.config.name = to;
    }
    for (const ref of refsOf(l)) if (ref[0] === from) ref[0] = to;
  }
  const cfg = getAt(json, ['modelTopology', 'config']);
  for (const key of ['input_layers', 'output_layers']) {
    const list = isObj(cfg) ? cfg[key] : undefined;
    if (Array.isArray(list)) for (const r of list) if (Array.isArray(r) && r[0] === from) r[0] = to;
  }
  for (const e of entriesOf(json)) if (typeof e.name === 'string' && e.name.startsWith(`${from}/`)) e.name = `${to}${e.name.slice(from.length)}`;
}

/** Byte offset of every entry of the first group in the shard (float32 seeds: 4 bytes per element). */
function entryOffsets(group: Group): number[] {
  let at = 0;
  return group.weights.map((e) => {
    const start = at;
    at += 4 * (isObj(e) && Array.isArray(e.shape) ? e.shape.reduce((a: number, b) => a * Number(b), 1) : 0);
    return start;
  });
}

function applyText(plan: CasePlan, m: Extract<Mutation, { kind: 'model-text' }>): void {
  const json = serializeTree(plan.json);
  const enc = new TextEncoder();
  const texts: Record<typeof m.variant, () => Uint8Array> = {
    'not-json': () => enc.encode(json.slice(0, Math.max(1, Math.floor(json.length / 2)))),
    binary: () => Uint8Array.from(m.bytes),
    empty: () => new Uint8Array(0),
    bom: () => enc.encode(`\ufeff${json}`),
    null: () => enc.encode('null'),
    array: () => enc.encode(`[${json}]`),
    string: () => enc.encode(JSON.stringify(json)),
    infinity: () => enc.encode('1e400'),
    utf16: () => new Uint8Array(Buffer.from(json, 'utf16le')),
    large: () => enc.encode(`${' '.repeat(1 << 20)}${json}`),
    deep: () => enc.encode(deepText(100_000, 'array')),
    'bad-utf8': () => Uint8Array.from([...enc.encode(json.slice(0, 20)), 0xff, 0xfe, 0xc0, ...m.bytes]),
  };
  plan.text = texts[m.variant]();
}

function applyOne(plan: CasePlan, m: Mutation): boolean {
  const json = plan.json;
  const layers = layersOf(json);
  const entries = entriesOf(json);
  const groups = groupsOf(json);
  switch (m.kind) {
    case 'replace-node': {
      const p = nth(allPaths(json), m.at);
      return p !== undefined && setAt(json, p, m.value);
    }
    case 'bad-number': {
      const p = nth(allPaths(json).filter((q) => q.some((k, i) => i >= q.length - 2 && NUMERIC_KEYS.has(String(k)))), m.at);
      return p !== undefined && setAt(json, p, new Raw(m.token));
    }
    case 'deep': {
      const paths = allPaths(json).filter((q) => !m.onlyNamedKeys || DEEP_KEYS.has(String(q[q.length - 1])));
      const p = nth(paths, m.at);
      return p !== undefined && setAt(json, p, new Raw(deepText(m.depth, m.shape)));
    }
    case 'proto-word': return applyProtoWord(plan, m, layers, entries);
    case 'delete-key': {
      const p = nth(allPaths(json).filter((q) => typeof q[q.length - 1] === 'string'), m.at);
      return p !== undefined && deleteAt(json, p);
    }
    case 'duplicate-layer': {
      const l = nth(layers, m.at);
      const list = getAt(json, ['modelTopology', 'config', 'layers']);
      if (!l || !Array.isArray(list)) return false;
      const copy = cloneTree(l);
      const name = layerName(l);
      if (m.rename && name !== undefined) {
        if ('name' in copy) copy.name = `${name}_dup`;
        if (isObj(copy.config)) copy.config.name = `${name}_dup`;
      }
      list.splice(list.indexOf(l) + 1, 0, copy);
      return true;
    }
    case 'inbound': return applyInbound(json, m, layers);
    case 'batch-shape': {
      const first = layers[0];
      return isObj(first?.config) && setAt(first, ['config', 'batch_input_shape'], cloneTree(m.value));
    }
    case 'weird-string': {
      if (m.renameLayer) {
        const name = nth(layers.map(layerName).filter((n): n is string => n !== undefined), m.at);
        if (name === undefined) return false;
        renameLayer(json, name, m.value);
        return true;
      }
      const p = nth(allPaths(json).filter((q) => typeof getAt(json, q) === 'string'), m.at);
      return p !== undefined && setAt(json, p, m.value);
    }
    case 'model-text':
      applyText(plan, m);
      return true;
    case 'shard-path': return applyShardPath(plan, m, groups);
    case 'exfil': return applyExfil(plan, m, groups);
    case 'manifest-entry': return applyManifestEntry(plan, m, groups);
    case 'shard-bytes': return applyShardBytes(plan, m);
  }
}

function applyProtoWord(plan: CasePlan, m: Extract<Mutation, { kind: 'proto-word' }>, layers: Obj[], entries: Entry[]): boolean {
  const json = plan.json;
  const l = nth(layers, m.at);
  const e = nth(entries, m.at);
  switch (m.target) {
    case 'class_name': return !!l && setAt(l, ['class_name'], m.word);
    case 'activation': return !!l && isObj(l.config) && setAt(l, ['config', 'activation'], m.word);
    case 'padding': return !!l && isObj(l.config) && setAt(l, ['config', 'padding'], m.word);
    case 'dtype': return !!e && setAt(e, ['dtype'], m.word);
    case 'format': return setAt(json, ['format'], m.word);
    case 'topology-class': return setAt(json, ['modelTopology', 'class_name'], m.word);
    case 'layer-name': {
      const name = l && layerName(l);
      if (name === undefined) return false;
      renameLayer(json, name, m.word);
      return true;
    }
    case 'weight-name': return !!e && setAt(e, ['name'], m.word);
    case 'config-key': return !!l && isObj(l.config) && setAt(l, ['config', m.word], m.value);
    case 'top-key': return setAt(json, [m.word], m.value);
  }
}

function applyInbound(json: unknown, m: Extract<Mutation, { kind: 'inbound' }>, layers: Obj[]): boolean {
  const readers = layers.filter((l) => refsOf(l).length > 0);
  const l = nth(readers, m.at);
  const cfg = getAt(json, ['modelTopology', 'config']);
  if (!l || !isObj(cfg)) return false;
  const ref = refsOf(l)[0];
  const last = layerName(layers[layers.length - 1]);
  switch (m.op) {
    case 'dangling': ref[0] = 'no_such_layer'; return true;
    case 'self': ref[0] = layerName(l); return true;
    case 'cycle': ref[0] = last; return true; // the last layer depends on every other one
    case 'empty': l.inbound_nodes = m.at % 2 ? [] : [[]]; return true;
    case 'shared': (l.inbound_nodes as unknown[]).push(cloneTree((l.inbound_nodes as unknown[])[0])); return true;
    case 'twice': {
      const node = (l.inbound_nodes as unknown[]).find((n): n is unknown[] => Array.isArray(n) && n.some(Array.isArray));
      node?.push(cloneTree(ref));
      return node !== undefined;
    }
    case 'index': ref[1 + (m.at % 2)] = nth([1, -1, 0.5, '0', null, 1e9], m.at); return true;
    case 'not-array': l.inbound_nodes = nth(['stem', { 0: ref }, [ref[0]], [[ref[0]]], 7], m.at); return true;
    case 'outputs': cfg.output_layers = nth([[['no_such_layer', 0, 0]], [[layerName(l), 0, 0]], [], 'x', [[null, 0, 0]]], m.at); return true;
    case 'inputs': cfg.input_layers = nth([[['no_such_layer', 0, 0]], [[layerName(l), 0, 0]], [], 'x'], m.at); return true;
  }
}

function applyShardPath(plan: CasePlan, m: Extract<Mutation, { kind: 'shard-path' }>, groups: Group[]): boolean {
  const g = nth(groups, m.at);
  if (!g || g.paths.length === 0) return false;
  const special: Record<string, ExtraEntry> = {
    fifo: { path: 'model/fifo', kind: 'fifo' },
    dir: { path: 'model/dir', kind: 'dir' },
    'link-out': { path: 'model/link-out', kind: 'symlink', target: `../${SECRET_TEXT_NAME}` },
    dangling: { path: 'model/dangling', kind: 'symlink', target: './no-such-file' },
    'sub/../../secret.txt': { path: 'model/sub', kind: 'dir' },
  };
  if (special[m.target]) plan.extras.push(special[m.target]);
  g.paths[m.at % g.paths.length] = m.target;
  return true;
}

/** Moves the output bias (never rescaled) into its own group whose shard lies outside the model folder. */
function applyExfil(plan: CasePlan, m: Extract<Mutation, { kind: 'exfil' }>, groups: Group[]): boolean {
  const g = groups[0];
  const index = g?.weights.findIndex((e) => isObj(e) && e.name === BIAS_NAMES[plan.seed]);
  if (!g || index === undefined || index < 0 || plan.shardChanged) return false;
  const start = entryOffsets(g)[index];
  const end = start + plan.secretBin.byteLength;
  const [entry] = g.weights.splice(index, 1);
  plan.shard = concat(plan.shard.subarray(0, start), plan.shard.subarray(end));
  plan.shardChanged = true;
  const paths: Record<typeof m.via, string> = {
    parent: `../${SECRET_BIN_NAME}`, absolute: `${ROOT}/${SECRET_BIN_NAME}`, symlink: 'bias.bin', 'symlink-dir': 'up/secret.bin', 'dot-dot': `sub/../../${SECRET_BIN_NAME}`,
  };
  if (m.via === 'symlink') plan.extras.push({ path: 'model/bias.bin', kind: 'symlink', target: `../${SECRET_BIN_NAME}` });
  if (m.via === 'symlink-dir') plan.extras.push({ path: 'model/up', kind: 'symlink', target: '..' });
  if (m.via === 'dot-dot') plan.extras.push({ path: 'model/sub', kind: 'dir' });
  (plan.json as { weightsManifest: Group[] }).weightsManifest.push({ paths: [paths[m.via]], weights: [entry] });
  return true;
}
const BIAS_NAMES: Record<Seed['name'], string> = { 'mnist-mlp': 'dense_3/bias', 'conv-functional': 'logits/bias' };

function applyManifestEntry(plan: CasePlan, m: Extract<Mutation, { kind: 'manifest-entry' }>, groups: Group[]): boolean {
  const g = nth(groups, m.at);
  const list = g?.weights;
  if (!g || !list || list.length === 0) return false;
  const i = m.at % list.length;
  const e = list[i];
  const v = Number(m.value);
  if (!isObj(e)) return false;
  switch (m.op) {
    case 'shape': {
      const shape = Array.isArray(e.shape) ? e.shape : [];
      e.shape = nth([[], [0], [1e9], [-1], [2.5], ['3'], null, 'x', [...shape].reverse(), [1e308], [2 ** 32, 2 ** 32], [...shape, 1], shape.slice(1), [1, ...shape]], v);
      return true;
    }
    case 'dtype': e.dtype = nth(DTYPES, v); return true;
    case 'duplicate': list.splice(i + 1, 0, cloneTree(e)); return true;
    case 'delete': list.splice(i, 1); return true;
    case 'rename': e.name = nth([`${e.name}_x`, '', 'kernel', `/${e.name}`, String(e.name).toUpperCase()], v)!; return true;
    case 'quantization':
      e.quantization = nth([{ dtype: 'uint8', scale: 0.01, min: -1 }, { dtype: 'float16' }, { dtype: 'uint16', scale: 1e-3, min: 0, original_dtype: 'float32' }, 'x', {}], v);
      return true;
    case 'group': e.group = nth(['model', '', 5, {}, 'optimizer'], v); return true;
    case 'swap': {
      const j = v % list.length;
      [list[i], list[j]] = [list[j], list[i]];
      return true;
    }
    case 'paths-empty': g.paths = []; return true;
    case 'paths-twice': g.paths = [...g.paths, ...g.paths]; return true;
    case 'split-shard': {
      // A second, valid shard file: the entries from i on live in weights2.bin.
      if (g !== groups[0] || plan.shardChanged || i === 0 || g.paths.length !== 1) return false;
      const cut = entryOffsets(g)[i];
      plan.shards.set('weights2.bin', plan.shard.slice(cut));
      plan.shard = plan.shard.slice(0, cut);
      plan.shardChanged = true;
      g.paths = [g.paths[0], 'weights2.bin'];
      return true;
    }
  }
}

function applyShardBytes(plan: CasePlan, m: Extract<Mutation, { kind: 'shard-bytes' }>): boolean {
  const s = plan.shard;
  const n = s.byteLength;
  switch (m.op) {
    case 'truncate': plan.shard = s.slice(0, m.at % Math.max(1, n)); break;
    case 'extend': plan.shard = concat(s, Uint8Array.from(m.bytes)); break;
    case 'empty': plan.shard = new Uint8Array(0); break;
    case 'set-float': {
      if (n < 4) return false;
      plan.shard = s.slice();
      new DataView(plan.shard.buffer).setFloat32(4 * (m.at % Math.floor(n / 4)), FLOATS[m.value % FLOATS.length], true);
      break;
    }
    case 'random-bytes': {
      plan.shard = s.slice();
      plan.shard.set(m.bytes.slice(0, n), Math.max(0, (m.at % Math.max(1, n)) - m.bytes.length));
      break;
    }
  }
  plan.shardChanged = true;
  return true;
}

/** The plan for one case: the seed (deep-copied) with the mutations applied in order. */
export function applyMutations(seed: Seed, mutations: Mutation[]): CasePlan {
  const plan: CasePlan = {
    seed: seed.name, json: cloneTree(seed.modelJson), shard: seed.shard, shardChanged: false, shards: new Map(), extras: [],
    secretBin: secretBin(seed.outputBias.end - seed.outputBias.start), applied: [],
  };
  for (const m of mutations) {
    if (plan.text) break; // the file is no longer a tree
    if (applyOne(plan, m)) plan.applied.push(m.kind);
  }
  return plan;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a);
  out.set(b, a.byteLength);
  return out;
}

function secretBin(bytes: number): Uint8Array {
  const values = Float32Array.from({ length: bytes / 4 }, (_, i) => 0.123456789 + i * 1.1e-3);
  return new Uint8Array(values.buffer);
}
