/**
 * Reader and writer for TensorFlow.js layers models (model.json + binary weight shards),
 * runtime-neutral: no file system here (see files.ts for Node).
 *
 * Parsing maps every tfjs layer to one or more enorm layers whose tensors are the very
 * Float32Arrays held by the model's weight entries, so balancing `model.network` in
 * place changes what `serializeTfjsModel` writes.
 */
import { ENormError, type ENormErrorCode } from '../errors.js';
import type { BarrierActivation, Layer, Network, Padding } from '../network/layers.js';

/** Weight dtypes of the tfjs weights manifest. */
export type TfjsDtype = 'float32' | 'int32' | 'bool' | 'complex64' | 'string';

export interface TfjsWeight {
  /** Manifest name, e.g. 'dense_1/kernel'. */
  name: string;
  shape: number[];
  dtype: TfjsDtype;
  /**
   * float32: the live values (the same object the network's layers hold);
   * int32: an Int32Array; bool, complex64, string: the raw bytes, written back unchanged.
   */
  data: Float32Array | Int32Array | Uint8Array;
  /** The manifest entry's `group`, kept as read. */
  group?: string;
}

export interface TfjsModel {
  /** enorm layers; their Float32Arrays are the `data` of entries in `weights`. */
  network: Network;
  /** Per-example shape of the (first) model input, from batch_input_shape; -1 where the file leaves a dimension open. */
  inputShape: number[];
  /** The `modelTopology` object exactly as read; written back unchanged. */
  topology: Record<string, unknown>;
  /** Every weight of the manifest, in manifest order. */
  weights: TfjsWeight[];
  /** Kept from the source file and written back when present. */
  generatedBy?: string;
  trainingConfig?: unknown;
  userDefinedMetadata?: unknown;
}

export interface ParseOptions {
  /** Name used at the start of every error message. Default 'model.json'. */
  source?: string;
}

// ---------------------------------------------------------------------------------------
// small helpers

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function fail(code: ENormErrorCode, message: string, layer?: string): never {
  throw new ENormError(code, message, layer === undefined ? {} : { layer });
}

function describe(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function shapeText(shape: readonly (number | null)[]): string {
  return `[${shape.map((d) => (d === null ? '?' : d)).join(', ')}]`;
}

function product(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

const DTYPE_BYTES: Record<Exclude<TfjsDtype, 'string'>, number> = { float32: 4, int32: 4, bool: 1, complex64: 8 };

// ---------------------------------------------------------------------------------------
// weights manifest and shards

interface ManifestGroup {
  paths: string[];
  entries: { name: string; shape: number[]; dtype: TfjsDtype; group?: string }[];
}

function readManifest(src: string, manifest: unknown): ManifestGroup[] {
  if (!Array.isArray(manifest)) fail('E_MODEL', `${src}: 'weightsManifest' must be an array of weight groups`);
  const seen = new Set<string>();
  return manifest.map((group: unknown, g) => {
    if (!isObject(group) || !Array.isArray(group.paths) || !Array.isArray(group.weights)) {
      fail('E_MODEL', `${src}: weightsManifest[${g}] needs 'paths' and 'weights' arrays`);
    }
    const paths = group.paths.map((p: unknown, i) => {
      if (typeof p !== 'string' || p === '') fail('E_MODEL', `${src}: weightsManifest[${g}].paths[${i}] is not a file name`);
      return p;
    });
    if (paths.length === 0 && group.weights.length > 0) fail('E_MODEL', `${src}: weightsManifest[${g}] lists weights but no shard files`);
    const entries = group.weights.map((w: unknown, i) => {
      if (!isObject(w) || typeof w.name !== 'string' || w.name === '') {
        fail('E_MODEL', `${src}: weightsManifest[${g}].weights[${i}] has no name`);
      }
      const name = w.name;
      if (w.quantization !== undefined && w.quantization !== null) {
        const q = isObject(w.quantization) && typeof w.quantization.dtype === 'string' ? ` (${w.quantization.dtype})` : '';
        fail('E_MODEL', `${src}: weight '${name}' is quantized${q}, which enorm does not support; export the model without weight quantization`);
      }
      if (!Array.isArray(w.shape) || !w.shape.every((d: unknown) => Number.isInteger(d) && (d as number) >= 0)) {
        fail('E_MODEL', `${src}: weight '${name}' has a malformed shape ${describe(w.shape)}`);
      }
      if (typeof w.dtype !== 'string' || !(w.dtype in DTYPE_BYTES || w.dtype === 'string')) {
        fail('E_MODEL', `${src}: weight '${name}' has unsupported dtype ${describe(w.dtype)}`);
      }
      if (seen.has(name)) fail('E_MODEL', `${src}: weight '${name}' appears twice in the weights manifest`);
      seen.add(name);
      const entry: ManifestGroup['entries'][number] = { name, shape: [...(w.shape as number[])], dtype: w.dtype as TfjsDtype };
      if (typeof w.group === 'string') entry.group = w.group;
      return entry;
    });
    return { paths, entries };
  });
}

function toBytes(b: unknown, what: string, src: string): Uint8Array {
  if (b instanceof ArrayBuffer) return new Uint8Array(b);
  if (ArrayBuffer.isView(b)) return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  return fail('E_MODEL', `${src}: ${what} is not an ArrayBuffer`);
}

function concatBytes(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/** Bytes the entry occupies at `offset`; string tensors are length-prefixed, so they are walked. */
function entryBytes(entry: ManifestGroup['entries'][number], bytes: Uint8Array, offset: number): number {
  const n = product(entry.shape);
  if (entry.dtype !== 'string') return n * DTYPE_BYTES[entry.dtype];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = offset;
  for (let i = 0; i < n; i++) {
    if (at + 4 > bytes.byteLength) return at + 4 - offset; // truncated: report what at least is needed
    at += 4 + view.getUint32(at, true);
  }
  return at - offset;
}

function shardLabel(paths: string[]): string {
  return paths.length === 1 ? `shard '${paths[0]}'` : `shards ${paths.map((p) => `'${p}'`).join(' + ')}`;
}

function decodeWeights(src: string, groups: ManifestGroup[], weightData: ArrayBuffer | ArrayBuffer[]): TfjsWeight[] {
  const allPaths = groups.flatMap((g) => g.paths);
  let segments: { paths: string[]; entries: ManifestGroup['entries']; bytes: Uint8Array }[];
  if (Array.isArray(weightData)) {
    if (weightData.length !== allPaths.length) {
      fail('E_MODEL', `${src}: the weights manifest lists ${allPaths.length} shard file(s), got ${weightData.length} buffer(s)`);
    }
    let k = 0;
    segments = groups.map((g) => ({
      paths: g.paths,
      entries: g.entries,
      bytes: concatBytes(g.paths.map((p) => toBytes(weightData[k++], `the data of shard '${p}'`, src))),
    }));
  } else {
    segments = [{ paths: allPaths, entries: groups.flatMap((g) => g.entries), bytes: toBytes(weightData, 'the weight data', src) }];
  }

  const weights: TfjsWeight[] = [];
  for (const seg of segments) {
    let offset = 0;
    const found = seg.bytes.byteLength;
    const slices: { entry: ManifestGroup['entries'][number]; start: number; end: number }[] = [];
    for (const entry of seg.entries) {
      const size = entryBytes(entry, seg.bytes, offset);
      slices.push({ entry, start: offset, end: offset + size });
      offset += size;
    }
    if (offset !== found) {
      const how = offset > found ? 'is truncated' : 'is longer than its manifest says';
      fail('E_MODEL', `${src}: ${shardLabel(seg.paths)} ${how}: expected ${offset} bytes, found ${found}`);
    }
    for (const { entry, start, end } of slices) {
      // slice() copies into a fresh, aligned buffer: no two tensors share memory.
      const own = seg.bytes.slice(start, end);
      const data = entry.dtype === 'float32' ? new Float32Array(own.buffer)
        : entry.dtype === 'int32' ? new Int32Array(own.buffer)
          : own;
      const w: TfjsWeight = { name: entry.name, shape: entry.shape, dtype: entry.dtype, data };
      if (entry.group !== undefined) w.group = entry.group;
      weights.push(w);
    }
  }
  return weights;
}

// ---------------------------------------------------------------------------------------
// layer conversion

/** What a converter sees of one tfjs layer. */
interface LayerCtx {
  src: string;
  /** tfjs layer name. */
  name: string;
  className: string;
  config: Json;
  /** Ranks (with the batch axis) of the tensors the layer reads. */
  inputRanks: number[];
  /** Float32 values of `${name}/${suffix}`, checked against `shape` (null = any). */
  weight(suffix: string, shape: (number | null)[]): Float32Array;
  /** Shape of `${name}/${suffix}` as the manifest gives it (the weight must exist). */
  weightShape(suffix: string): number[];
  /** E_LAYER_KIND 'unsupported ...' naming the layer. */
  unsupported(what: string): never;
}

interface LayerSpec {
  /** Rank (batch axis included) the layer must read; others are rejected. */
  inRank?: number;
  /** Rank it produces; default: its input's. */
  outRank?: number;
  convert(ctx: LayerCtx): Layer[];
}

const BARRIERS: Record<string, BarrierActivation> = {
  sigmoid: 'sigmoid', tanh: 'tanh', softmax: 'softmax', elu: 'elu', selu: 'selu',
  softplus: 'softplus', relu6: 'relu6', swish: 'swish', gelu: 'gelu',
};

/**
 * The layers an activation becomes. Fused into another layer (`standalone` false) it is
 * named `${owner}/${fn}` and 'linear' adds nothing; a standalone Activation layer keeps
 * the tfjs name and 'linear' becomes an identity layer.
 */
function activation(ctx: LayerCtx, fn: unknown, standalone: boolean): Layer[] {
  const name = (f: string) => (standalone ? ctx.name : `${ctx.name}/${f}`);
  if (fn === undefined || fn === null || fn === 'linear') return standalone ? [{ kind: 'identity', name: ctx.name }] : [];
  if (fn === 'relu') return [{ kind: 'relu', name: name('relu') }];
  if (typeof fn === 'string' && fn in BARRIERS) return [{ kind: 'activation', fn: BARRIERS[fn], name: name(fn) }];
  return fail('E_LAYER_KIND', `${ctx.src}: layer '${ctx.name}' (${ctx.className}) uses activation ${describe(fn)}, which enorm cannot handle`, ctx.name);
}

function pair(ctx: LayerCtx, key: string, fallback?: [number, number]): [number, number] {
  const v = ctx.config[key];
  if ((v === undefined || v === null) && fallback) return fallback;
  const arr = typeof v === 'number' ? [v, v] : v;
  if (!Array.isArray(arr) || arr.length !== 2 || !arr.every((d) => Number.isInteger(d) && d > 0)) {
    fail('E_MODEL', `${ctx.src}: layer '${ctx.name}' (${ctx.className}) has a malformed ${key} ${describe(v)}`, ctx.name);
  }
  return [arr[0], arr[1]];
}

function padding(ctx: LayerCtx): Padding {
  const p = ctx.config.padding ?? 'valid';
  if (p !== 'same' && p !== 'valid') ctx.unsupported(`padding ${describe(p)}`);
  return p;
}

/** channels_last only, and for convolutions no dilation. */
function checkSpatial(ctx: LayerCtx, dilated: boolean): void {
  const df = ctx.config.data_format;
  if (df !== undefined && df !== null && df !== 'channels_last') ctx.unsupported(`data_format ${describe(df)} (enorm reads channels_last models only)`);
  if (dilated) {
    const [dh, dw] = pair(ctx, 'dilation_rate', [1, 1]);
    if (dh !== 1 || dw !== 1) ctx.unsupported(`dilation_rate [${dh}, ${dw}]`);
  }
  const groups = ctx.config.groups;
  if (groups !== undefined && groups !== null && groups !== 1) ctx.unsupported(`groups ${describe(groups)}`);
}

function useBias(ctx: LayerCtx): boolean {
  return ctx.config.use_bias !== false;
}

function lastAxisOnly(ctx: LayerCtx, key: string): void {
  const raw = ctx.config[key] ?? -1;
  const axes = Array.isArray(raw) ? raw : [raw];
  const rank = ctx.inputRanks[0];
  if (axes.length !== 1 || !(axes[0] === -1 || axes[0] === rank - 1)) ctx.unsupported(`${key} ${describe(raw)} (only the last axis is supported)`);
}

/** A whole-number field of the layer's config (units, filters), or a one-line E_MODEL error. */
function integerConfig(ctx: LayerCtx, key: string): number {
  const v = ctx.config[key];
  if (!Number.isInteger(v)) fail('E_MODEL', `${ctx.src}: layer '${ctx.name}' (${ctx.className}) has no integer '${key}'`, ctx.name);
  return v as number;
}

const dense: LayerSpec = {
  inRank: 2,
  convert(ctx) {
    const units = integerConfig(ctx, 'units');
    const [inputs] = ctx.weightShape('kernel');
    const layer: Layer = { kind: 'dense', name: ctx.name, layout: 'io', shape: [inputs, units], weight: ctx.weight('kernel', [null, units]) };
    if (useBias(ctx)) layer.bias = ctx.weight('bias', [units]);
    return [layer, ...activation(ctx, ctx.config.activation, false)];
  },
};

const conv2d: LayerSpec = {
  inRank: 4,
  outRank: 4,
  convert(ctx) {
    checkSpatial(ctx, true);
    const filters = integerConfig(ctx, 'filters');
    const [kh, kw] = pair(ctx, 'kernel_size');
    const cin = ctx.weightShape('kernel')[2];
    const layer: Layer = {
      kind: 'conv2d', name: ctx.name, layout: 'hwio', shape: [kh, kw, cin, filters],
      weight: ctx.weight('kernel', [kh, kw, null, filters]),
      strides: pair(ctx, 'strides', [1, 1]), padding: padding(ctx),
    };
    if (useBias(ctx)) layer.bias = ctx.weight('bias', [filters]);
    return [layer, ...activation(ctx, ctx.config.activation, false)];
  },
};

/** The depthwise part of DepthwiseConv2D / SeparableConv2D ('depthwise_kernel' [kh, kw, C, M]). */
function depthwiseKernel(ctx: LayerCtx, name: string): Layer & { kind: 'depthwise-conv2d' } {
  const [kh, kw] = pair(ctx, 'kernel_size');
  // tfjs leaves depth_multiplier out of SeparableConv2D configs: check it only when given.
  const m = ctx.config.depth_multiplier ?? null;
  if (m !== null && !(Number.isInteger(m) && (m as number) > 0)) {
    fail('E_MODEL', `${ctx.src}: layer '${ctx.name}' (${ctx.className}) has a malformed depth_multiplier ${describe(m)}`, ctx.name);
  }
  const [, , channels, multiplier] = ctx.weightShape('depthwise_kernel');
  return {
    kind: 'depthwise-conv2d', name, layout: 'hwcm', shape: [kh, kw, channels, multiplier],
    weight: ctx.weight('depthwise_kernel', [kh, kw, null, m as number | null]),
    strides: pair(ctx, 'strides', [1, 1]), padding: padding(ctx),
  };
}

const depthwiseConv2d: LayerSpec = {
  inRank: 4,
  outRank: 4,
  convert(ctx) {
    checkSpatial(ctx, true);
    const layer = depthwiseKernel(ctx, ctx.name);
    if (useBias(ctx)) layer.bias = ctx.weight('bias', [layer.shape[2] * layer.shape[3]]);
    return [layer, ...activation(ctx, ctx.config.activation, false)];
  },
};

/** SeparableConv2D = depthwise (strides, padding; no bias) then a 1x1 conv (bias, activation). */
const separableConv2d: LayerSpec = {
  inRank: 4,
  outRank: 4,
  convert(ctx) {
    checkSpatial(ctx, true);
    const filters = integerConfig(ctx, 'filters');
    const depthwise = depthwiseKernel(ctx, `${ctx.name}/depthwise`);
    const mid = depthwise.shape[2] * depthwise.shape[3];
    const pointwise: Layer = {
      kind: 'conv2d', name: ctx.name, layout: 'hwio', shape: [1, 1, mid, filters],
      weight: ctx.weight('pointwise_kernel', [1, 1, mid, filters]),
      strides: [1, 1], padding: 'valid',
    };
    if (useBias(ctx)) pointwise.bias = ctx.weight('bias', [filters]);
    return [depthwise, pointwise, ...activation(ctx, ctx.config.activation, false)];
  },
};

const batchNorm: LayerSpec = {
  convert(ctx) {
    lastAxisOnly(ctx, 'axis');
    const channels = ctx.weightShape('moving_mean')[0];
    const epsilon = ctx.config.epsilon ?? 1e-3;
    if (typeof epsilon !== 'number') fail('E_MODEL', `${ctx.src}: layer '${ctx.name}' (BatchNormalization) has a malformed epsilon ${describe(epsilon)}`, ctx.name);
    const layer: Layer = {
      kind: 'batch-norm', name: ctx.name, epsilon,
      mean: ctx.weight('moving_mean', [channels]),
      variance: ctx.weight('moving_variance', [channels]),
    };
    if (ctx.config.scale !== false) layer.gamma = ctx.weight('gamma', [channels]);
    if (ctx.config.center !== false) layer.beta = ctx.weight('beta', [channels]);
    return [layer];
  },
};

function pool(kind: 'max-pool' | 'avg-pool'): LayerSpec {
  return {
    inRank: 4,
    outRank: 4,
    convert(ctx) {
      checkSpatial(ctx, false);
      const size = pair(ctx, 'pool_size', [2, 2]);
      return [{ kind, name: ctx.name, size, strides: pair(ctx, 'strides', size), padding: padding(ctx) }];
    },
  };
}

function globalPool(kind: 'global-avg-pool' | 'global-max-pool'): LayerSpec {
  return {
    inRank: 4,
    outRank: 2,
    convert(ctx) {
      checkSpatial(ctx, false);
      if (ctx.config.keepdims === true) ctx.unsupported('keepdims true');
      return [{ kind, name: ctx.name }];
    },
  };
}

const flatten: LayerSpec = {
  outRank: 2,
  convert(ctx) {
    const df = ctx.config.data_format;
    // channels_first Flatten moves axis 1 last before flattening: not a layout enorm can name.
    if (df === 'channels_first' && ctx.inputRanks[0] > 2) ctx.unsupported(`data_format ${describe(df)}`);
    return [{ kind: 'flatten', name: ctx.name, order: 'channels-last' }];
  },
};

const dropout: LayerSpec = {
  convert(ctx) {
    const rate = ctx.config.rate;
    return [typeof rate === 'number' ? { kind: 'dropout', name: ctx.name, rate } : { kind: 'dropout', name: ctx.name }];
  },
};

const relu: LayerSpec = {
  convert(ctx) {
    const max = ctx.config.max_value ?? null;
    const slope = ctx.config.negative_slope ?? 0;
    const threshold = ctx.config.threshold ?? 0;
    if (threshold !== 0) ctx.unsupported(`threshold ${describe(threshold)}`);
    if (max === null && slope === 0) return [{ kind: 'relu', name: ctx.name }];
    if (max === null && typeof slope === 'number' && slope > 0) return [{ kind: 'leaky-relu', name: ctx.name, alpha: slope }];
    if (max === 6 && slope === 0) return [{ kind: 'activation', fn: 'relu6', name: ctx.name }];
    return ctx.unsupported(`max_value ${describe(max)} with negative_slope ${describe(slope)}`);
  },
};

const leakyRelu: LayerSpec = {
  convert(ctx) {
    const alpha = ctx.config.alpha ?? ctx.config.negative_slope ?? 0.3;
    if (typeof alpha !== 'number' || !Number.isFinite(alpha)) fail('E_MODEL', `${ctx.src}: layer '${ctx.name}' (LeakyReLU) has a malformed alpha ${describe(alpha)}`, ctx.name);
    return [{ kind: 'leaky-relu', name: ctx.name, alpha }];
  },
};

const activationLayer: LayerSpec = { convert: (ctx) => activation(ctx, ctx.config.activation, true) };
const softmax: LayerSpec = { convert: (ctx) => [{ kind: 'activation', fn: 'softmax', name: ctx.name }] };

function merge(kind: 'add' | 'concat'): LayerSpec {
  return {
    convert(ctx) {
      if (kind === 'concat') lastAxisOnly(ctx, 'axis');
      if (ctx.inputRanks.some((r) => r !== ctx.inputRanks[0])) ctx.unsupported('inputs of different ranks');
      // inputs are filled in by the caller
      return [{ kind, name: ctx.name, inputs: [] }];
    },
  };
}

/** tfjs class name -> converter. Classes not listed are rejected with E_LAYER_KIND. */
const LAYERS: Record<string, LayerSpec> = {
  Dense: dense,
  Conv2D: conv2d,
  DepthwiseConv2D: depthwiseConv2d,
  SeparableConv2D: separableConv2d,
  BatchNormalization: batchNorm,
  MaxPooling2D: pool('max-pool'),
  MaxPool2D: pool('max-pool'),
  AveragePooling2D: pool('avg-pool'),
  AvgPool2D: pool('avg-pool'),
  GlobalAveragePooling2D: globalPool('global-avg-pool'),
  GlobalAvgPool2D: globalPool('global-avg-pool'),
  GlobalMaxPooling2D: globalPool('global-max-pool'),
  GlobalMaxPool2D: globalPool('global-max-pool'),
  Flatten: flatten,
  Dropout: dropout,
  SpatialDropout1D: dropout,
  SpatialDropout2D: dropout,
  SpatialDropout3D: dropout,
  ReLU: relu,
  LeakyReLU: leakyRelu,
  Activation: activationLayer,
  Softmax: softmax,
  Add: merge('add'),
  Concatenate: merge('concat'),
};

// ---------------------------------------------------------------------------------------
// topology

interface TopoLayer {
  name: string;
  className: string;
  config: Json;
  /** tfjs names of the layers it reads (functional models). */
  inbound: string[];
}

function unwrapTopology(src: string, topology: Json): { className: string; config: unknown } {
  const t = isObject(topology.model_config) ? topology.model_config : topology;
  const className = t.class_name;
  if (className !== 'Sequential' && className !== 'Model' && className !== 'Functional') {
    fail('E_MODEL', `${src}: modelTopology has class_name ${describe(className)}; enorm reads Sequential and functional (Model) layers models`);
  }
  return { className, config: t.config };
}

function readLayerEntry(src: string, raw: unknown, i: number): { name: string; className: string; config: Json; raw: Json } {
  if (!isObject(raw) || typeof raw.class_name !== 'string') fail('E_MODEL', `${src}: layers[${i}] has no class_name`);
  const config = isObject(raw.config) ? raw.config : fail('E_MODEL', `${src}: layers[${i}] (${raw.class_name}) has no config object`);
  const name = typeof raw.name === 'string' ? raw.name : config.name;
  if (typeof name !== 'string' || name === '') fail('E_MODEL', `${src}: layers[${i}] (${raw.class_name}) has no name`);
  return { name, className: raw.class_name, config, raw };
}

function readInbound(src: string, entry: { name: string; raw: Json }): string[] {
  const nodes = entry.raw.inbound_nodes;
  if (nodes === undefined || (Array.isArray(nodes) && nodes.length === 0)) return [];
  if (!Array.isArray(nodes)) fail('E_MODEL', `${src}: layer '${entry.name}' has malformed inbound_nodes`, entry.name);
  if (nodes.length > 1) {
    fail('E_MODEL', `${src}: layer '${entry.name}' is called at ${nodes.length} places (a shared layer), which enorm does not support`, entry.name);
  }
  const node = nodes[0];
  if (!Array.isArray(node)) {
    fail('E_MODEL', `${src}: layer '${entry.name}' has inbound_nodes in an unsupported format (expected tfjs / Keras 2 [[layer, node, tensor, kwargs], ...])`, entry.name);
  }
  return node.map((ref: unknown) => {
    if (!Array.isArray(ref) || typeof ref[0] !== 'string') fail('E_MODEL', `${src}: layer '${entry.name}' has a malformed inbound node ${describe(ref)}`, entry.name);
    if ((ref[1] ?? 0) !== 0 || (ref[2] ?? 0) !== 0) {
      fail('E_MODEL', `${src}: layer '${entry.name}' reads output ${describe(ref.slice(0, 3))}; enorm supports single-output, single-use layers only`, entry.name);
    }
    return ref[0];
  });
}

/** Stable topological order (tfjs lists functional layers in order already; hand-written files may not). */
function topoSort(src: string, layers: TopoLayer[]): TopoLayer[] {
  const byName = new Map(layers.map((l) => [l.name, l]));
  for (const l of layers) {
    for (const ref of l.inbound) if (!byName.has(ref)) fail('E_MODEL', `${src}: layer '${l.name}' reads '${ref}', which is not a layer of the model`, l.name);
  }
  const done = new Set<string>();
  const out: TopoLayer[] = [];
  while (out.length < layers.length) {
    const next = layers.find((l) => !done.has(l.name) && l.inbound.every((r) => done.has(r)));
    if (!next) fail('E_MODEL', `${src}: the layers form a cycle`);
    done.add(next.name);
    out.push(next);
  }
  return out;
}

function batchShape(src: string, name: string, config: Json): (number | null)[] | undefined {
  const s = config.batch_input_shape ?? config.batch_shape;
  if (s === undefined || s === null) return undefined;
  if (!Array.isArray(s) || s.length < 2 || !s.every((d) => d === null || (Number.isInteger(d) && d > 0))) {
    fail('E_MODEL', `${src}: layer '${name}' has a malformed batch_input_shape ${describe(s)}`, name);
  }
  return s as (number | null)[];
}

function inputLayer(name: string, batch: (number | null)[]): Layer {
  const shape = batch.slice(1);
  return shape.every((d) => d !== null) ? { kind: 'input', name, shape: shape as number[] } : { kind: 'input', name };
}

// ---------------------------------------------------------------------------------------
// public API

/**
 * Parses a tfjs layers model. `weightData` is either all shards concatenated in manifest
 * order or one buffer per shard path (in manifest order). Throws ENormError E_MODEL for
 * corrupt or unsupported files and E_LAYER_KIND for layers enorm cannot represent.
 */
export function parseTfjsModel(modelJson: unknown, weightData: ArrayBuffer | ArrayBuffer[], options: ParseOptions = {}): TfjsModel {
  const src = options.source ?? 'model.json';
  if (!isObject(modelJson)) fail('E_MODEL', `${src}: not a tfjs model (expected a JSON object)`);
  const format = modelJson.format;
  if (format !== undefined && format !== 'layers-model') {
    fail('E_MODEL', `${src}: format ${describe(format)} is not supported; enorm reads tfjs layers models ('layers-model')`);
  }
  const topology = modelJson.modelTopology;
  if (!isObject(topology)) fail('E_MODEL', `${src}: 'modelTopology' is missing or not an object`);
  if (modelJson.weightsManifest === undefined) fail('E_MODEL', `${src}: 'weightsManifest' is missing`);
  const groups = readManifest(src, modelJson.weightsManifest);
  const weights = decodeWeights(src, groups, weightData);
  const weightByName = new Map(weights.map((w) => [w.name, w]));

  const { className, config } = unwrapTopology(src, topology);
  const sequential = className === 'Sequential';
  const rawLayers = Array.isArray(config) ? config : isObject(config) ? config.layers : undefined;
  if (!Array.isArray(rawLayers) || rawLayers.length === 0) fail('E_MODEL', `${src}: modelTopology lists no layers`);
  const entries = rawLayers.map((raw, i) => readLayerEntry(src, raw, i));
  const names = new Set<string>();
  for (const e of entries) {
    if (names.has(e.name)) fail('E_MODEL', `${src}: two layers are named '${e.name}'`, e.name);
    names.add(e.name);
  }

  let topo: TopoLayer[];
  let inputNames: string[];
  let outputNames: string[];
  if (sequential) {
    const first = entries[0];
    if (first.className !== 'InputLayer') {
      const batch = batchShape(src, first.name, first.config);
      if (!batch) fail('E_MODEL', `${src}: the first layer '${first.name}' has no batch_input_shape, so the model's input shape is unknown`, first.name);
      let inName = `${first.name}_input`;
      while (names.has(inName)) inName += '_';
      entries.unshift({ name: inName, className: 'InputLayer', config: { batch_input_shape: batch }, raw: {} });
    }
    topo = entries.map((e, i) => ({ name: e.name, className: e.className, config: e.config, inbound: i === 0 ? [] : [entries[i - 1].name] }));
    inputNames = [entries[0].name];
    outputNames = [entries[entries.length - 1].name];
  } else {
    topo = topoSort(src, entries.map((e) => ({ name: e.name, className: e.className, config: e.config, inbound: readInbound(src, e) })));
    const cfg = isObject(config) ? config : {};
    const refs = (key: string) => (Array.isArray(cfg[key]) ? (cfg[key] as unknown[]) : []).map((r) => (Array.isArray(r) ? r[0] : r)).filter((r): r is string => typeof r === 'string');
    inputNames = refs('input_layers');
    if (inputNames.length === 0) inputNames = topo.filter((l) => l.className === 'InputLayer').map((l) => l.name);
    outputNames = refs('output_layers');
  }

  const network: Network = [];
  const outName = new Map<string, string>(); // tfjs layer -> enorm layer that carries its output
  const rank = new Map<string, number>();
  const enormNames = new Set<string>();
  const inputShapes = new Map<string, number[]>();

  for (const l of topo) {
    let layers: Layer[];
    if (l.className === 'InputLayer') {
      if (l.inbound.length > 0) fail('E_MODEL', `${src}: input layer '${l.name}' reads other layers`, l.name);
      const batch = batchShape(src, l.name, l.config);
      if (!batch) fail('E_MODEL', `${src}: input layer '${l.name}' has no batch_input_shape`, l.name);
      inputShapes.set(l.name, batch.slice(1).map((d) => d ?? -1));
      rank.set(l.name, batch.length);
      layers = [inputLayer(l.name, batch)];
    } else {
      const spec = LAYERS[l.className];
      if (!spec) fail('E_LAYER_KIND', `${src}: layer '${l.name}' has class ${l.className}, which enorm cannot rescale`, l.name);
      if (l.inbound.length === 0) fail('E_MODEL', `${src}: layer '${l.name}' (${l.className}) reads nothing`, l.name);
      const inputRanks = l.inbound.map((r) => rank.get(r) ?? 0);
      if (spec.inRank !== undefined && inputRanks.some((r) => r !== spec.inRank)) {
        fail('E_LAYER_KIND', `${src}: layer '${l.name}' (${l.className}) reads a rank-${inputRanks[0]} tensor; enorm supports it on rank-${spec.inRank} inputs only`, l.name);
      }
      const weightFor = (suffix: string) => {
        const full = `${l.name}/${suffix}`;
        const w = weightByName.get(full);
        if (!w) fail('E_MODEL', `${src}: layer '${l.name}' (${l.className}) needs weight '${full}', which the weights manifest does not list`, l.name);
        return w;
      };
      const ctx: LayerCtx = {
        src, name: l.name, className: l.className, config: l.config, inputRanks,
        weightShape: (suffix) => weightFor(suffix).shape,
        weight(suffix, shape) {
          const w = weightFor(suffix);
          if (w.dtype !== 'float32') fail('E_MODEL', `${src}: weight '${w.name}' has dtype ${w.dtype}; enorm rescales float32 weights only`, l.name);
          if (w.shape.length !== shape.length || shape.some((d, i) => d !== null && d !== w.shape[i])) {
            fail('E_MODEL', `${src}: weight '${w.name}' has shape ${shapeText(w.shape)}, expected ${shapeText(shape)} for layer '${l.name}' (${l.className})`, l.name);
          }
          return w.data as Float32Array;
        },
        unsupported(what) {
          return fail('E_LAYER_KIND', `${src}: layer '${l.name}' (${l.className}): unsupported ${what}`, l.name);
        },
      };
      layers = spec.convert(ctx);
      if (layers.length === 0) fail('E_LAYER_KIND', `${src}: layer '${l.name}' (${l.className}) maps to no enorm layer`, l.name);
      const head = layers[0];
      const reads = l.inbound.map((r) => outName.get(r) as string);
      if (head.kind === 'add' || head.kind === 'concat') {
        if (reads.length < 2) fail('E_MODEL', `${src}: layer '${l.name}' (${l.className}) merges ${reads.length} input(s); it needs at least two`, l.name);
        head.inputs = reads;
      } else {
        if (reads.length !== 1) fail('E_MODEL', `${src}: layer '${l.name}' (${l.className}) reads ${reads.length} inputs; it takes exactly one`, l.name);
        if (!sequential) head.inputs = reads;
      }
      rank.set(l.name, spec.outRank ?? inputRanks[0]);
    }
    for (const layer of layers) {
      const n = layer.name as string;
      if (enormNames.has(n)) fail('E_MODEL', `${src}: the derived layer name '${n}' clashes with another layer's`, l.name);
      enormNames.add(n);
      network.push(layer);
    }
    outName.set(l.name, layers[layers.length - 1].name as string);
  }

  // enorm treats the layers nothing reads as the outputs; a tfjs output that feeds other
  // layers would be taken for a hidden layer and rescaled, so refuse it.
  for (const o of outputNames) {
    const n = outName.get(o);
    if (n === undefined) fail('E_MODEL', `${src}: output layer '${o}' is not a layer of the model`);
    const reader = network.find((layer) => layer.inputs?.includes(n));
    if (reader) {
      fail('E_MODEL', `${src}: output layer '${o}' also feeds layer '${reader.name}'; enorm cannot keep an intermediate output fixed`, o);
    }
  }
  const inputShape = inputShapes.get(inputNames[0]) ?? [...inputShapes.values()][0];
  if (inputShape === undefined) fail('E_MODEL', `${src}: the model has no input layer`);

  const model: TfjsModel = { network, inputShape, topology, weights };
  if (typeof modelJson.generatedBy === 'string') model.generatedBy = modelJson.generatedBy;
  if (modelJson.trainingConfig !== undefined && modelJson.trainingConfig !== null) model.trainingConfig = modelJson.trainingConfig;
  if (modelJson.userDefinedMetadata !== undefined && modelJson.userDefinedMetadata !== null) model.userDefinedMetadata = modelJson.userDefinedMetadata;
  return model;
}

/**
 * Writes the model back: the same topology, every weight in manifest order in one shard
 * (float32 weights with their current values, the others byte for byte as read).
 */
export function serializeTfjsModel(model: TfjsModel, weightsPath = 'weights.bin'): { modelJson: object; weightData: ArrayBuffer } {
  let total = 0;
  for (const w of model.weights) {
    if (w.dtype !== 'string') {
      const need = product(w.shape) * DTYPE_BYTES[w.dtype];
      if (w.data.byteLength !== need) {
        fail('E_MODEL', `weight '${w.name}' holds ${w.data.byteLength} bytes, its shape ${shapeText(w.shape)} (${w.dtype}) needs ${need}`);
      }
    }
    total += w.data.byteLength;
  }
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const w of model.weights) {
    bytes.set(new Uint8Array(w.data.buffer, w.data.byteOffset, w.data.byteLength), at);
    at += w.data.byteLength;
  }
  const modelJson: Json = {
    format: 'layers-model',
    generatedBy: model.generatedBy ?? 'enorm',
    convertedBy: 'enorm',
    modelTopology: model.topology,
    weightsManifest: [{
      paths: [weightsPath],
      weights: model.weights.map((w) => (w.group === undefined
        ? { name: w.name, shape: [...w.shape], dtype: w.dtype }
        : { name: w.name, shape: [...w.shape], dtype: w.dtype, group: w.group })),
    }],
  };
  if (model.trainingConfig !== undefined) modelJson.trainingConfig = model.trainingConfig;
  if (model.userDefinedMetadata !== undefined) modelJson.userDefinedMetadata = model.userDefinedMetadata;
  return { modelJson, weightData: bytes.buffer };
}
