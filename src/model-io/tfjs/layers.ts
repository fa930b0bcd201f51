/** tfjs layer classes and how each becomes enorm layers. */
import { BARRIER_ACTIVATIONS, type BarrierActivation, type Layer, type Padding, type WeightedLayer } from '../../network/layers.js';
import { clean, describe, fail, quote, type Json } from '../shared.js';

/** What a converter sees of one tfjs layer. */
export interface LayerCtx {
  src: string;
  /** tfjs layer name. */
  name: string;
  className: string;
  /** `${src}: layer 'name' (ClassName)`, cleaned, for messages. */
  label: string;
  config: Json;
  /** Ranks (with the batch axis) of the tensors the layer reads. */
  inputRanks: number[];
  /** Float32 values of `${name}/${suffix}`, checked against `shape` (null = any). */
  weight(suffix: string, shape: (number | null)[]): Float32Array;
  /** Shape of `${name}/${suffix}` as the manifest gives it (the weight must exist). */
  weightShape(suffix: string): readonly number[];
  /** E_LAYER_KIND 'unsupported ...' naming the layer. */
  unsupported(what: string): never;
}

export interface LayerSpec {
  /** Rank (batch axis included) the layer must read; others are rejected. */
  inRank?: number;
  /** Rank it produces; default: its input's. */
  outRank?: number;
  convert(ctx: LayerCtx): Layer[];
}

/** The E_MODEL error for a malformed config field. */
function malformed(ctx: LayerCtx, key: string, value: unknown): never {
  return fail('E_MODEL', `${ctx.label} has a malformed ${key} ${describe(value)}`, ctx.name);
}

/** The tfjs name of each barrier activation; a new one fails to compile until it is named here. */
const TFJS_ACTIVATION_NAMES = {
  sigmoid: 'sigmoid', tanh: 'tanh', softmax: 'softmax', gelu: 'gelu', elu: 'elu', selu: 'selu', softplus: 'softplus', swish: 'swish', relu6: 'relu6',
} as const satisfies Record<BarrierActivation, string>;

/** tfjs activation name -> enorm's. A Map, so that an activation named 'constructor' or '__proto__' finds nothing. */
const BARRIERS: ReadonlyMap<string, BarrierActivation> = new Map(BARRIER_ACTIVATIONS.map((f) => [TFJS_ACTIVATION_NAMES[f], f]));

/**
 * The layers an activation becomes. Fused into another layer (`standalone` false) it is
 * named `${owner}/${fn}` and 'linear' adds nothing; a standalone Activation layer keeps
 * the tfjs name and 'linear' becomes an identity layer.
 */
function activation(ctx: LayerCtx, fn: unknown, standalone: boolean): Layer[] {
  const name = (f: string) => (standalone ? ctx.name : `${ctx.name}/${f}`);
  if (fn === undefined || fn === null || fn === 'linear') return standalone ? [{ kind: 'identity', name: ctx.name }] : [];
  if (fn === 'relu') return [{ kind: 'relu', name: name('relu') }];
  const barrier = typeof fn === 'string' ? BARRIERS.get(fn) : undefined;
  if (barrier !== undefined) return [{ kind: 'activation', fn: barrier, name: name(barrier) }];
  return fail('E_LAYER_KIND', `${ctx.label} uses activation ${describe(fn)}, which enorm cannot handle`, ctx.name);
}

function pair(ctx: LayerCtx, key: string, fallback?: [number, number]): [number, number] {
  const v = ctx.config[key];
  if ((v === undefined || v === null) && fallback) return fallback;
  const arr = typeof v === 'number' ? [v, v] : v;
  if (!Array.isArray(arr) || arr.length !== 2 || !arr.every((d) => Number.isSafeInteger(d) && d > 0)) malformed(ctx, key, v);
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

/** A positive whole-number field of the layer's config (units, filters), or a one-line E_MODEL error. */
function integerConfig(ctx: LayerCtx, key: string): number {
  const v = ctx.config[key];
  if (!Number.isSafeInteger(v) || (v as number) < 1) fail('E_MODEL', `${ctx.label} has no positive integer '${key}' (got ${describe(v)})`, ctx.name);
  return v as number;
}

/** `layer` with its bias (`units` values) when the config uses one, then its fused activation; `before` comes first. */
function kernelLayers(ctx: LayerCtx, layer: WeightedLayer, units: number, before: Layer[] = []): Layer[] {
  if (useBias(ctx)) layer.bias = ctx.weight('bias', [units]);
  return [...before, layer, ...activation(ctx, ctx.config.activation, false)];
}

const dense: LayerSpec = {
  inRank: 2,
  convert(ctx) {
    const units = integerConfig(ctx, 'units');
    const [inputs] = ctx.weightShape('kernel');
    return kernelLayers(ctx, { kind: 'dense', name: ctx.name, layout: 'io', shape: [inputs, units], weight: ctx.weight('kernel', [null, units]) }, units);
  },
};

/** A layer that reads NHWC maps (rank 4, channels_last; convolutions: no dilation or groups) and gives rank `outRank`. */
function mapLayer(outRank: number, convolution: boolean, convert: (ctx: LayerCtx) => Layer[]): LayerSpec {
  return {
    inRank: 4,
    outRank,
    convert(ctx) {
      checkSpatial(ctx, convolution);
      return convert(ctx);
    },
  };
}

const convolution = (convert: (ctx: LayerCtx) => Layer[]): LayerSpec => mapLayer(4, true, convert);

const conv2d = convolution((ctx) => {
  const filters = integerConfig(ctx, 'filters');
  const [kh, kw] = pair(ctx, 'kernel_size');
  const cin = ctx.weightShape('kernel')[2];
  const weight = ctx.weight('kernel', [kh, kw, null, filters]);
  const layer: WeightedLayer = { kind: 'conv2d', name: ctx.name, layout: 'hwio', shape: [kh, kw, cin, filters], weight, strides: pair(ctx, 'strides', [1, 1]), padding: padding(ctx) };
  return kernelLayers(ctx, layer, filters);
});

/**
 * Conv2DTranspose: kernel [kh, kw, filters, in] ('hwoi'). tfjs's 'valid' output is H*s + max(k - s, 0)
 * (deconvLength), which is the kind's (H-1)*s + k except when the kernel is smaller than the stride:
 * then tfjs adds rows of bias only, which the kind does not express, so such a layer is refused.
 */
const conv2dTranspose = convolution((ctx) => {
  const filters = integerConfig(ctx, 'filters');
  const [kh, kw] = pair(ctx, 'kernel_size');
  const strides = pair(ctx, 'strides', [1, 1]);
  const pad = padding(ctx);
  if (pad === 'valid' && (kh < strides[0] || kw < strides[1])) {
    ctx.unsupported(`'valid' padding with a ${kh}x${kw} kernel smaller than its strides [${strides.join(', ')}] (tfjs pads its output to input x stride)`);
  }
  const outputPadding = ctx.config.output_padding ?? null;
  if (outputPadding !== null) ctx.unsupported(`output_padding ${describe(outputPadding)}`);
  const cin = ctx.weightShape('kernel')[3];
  const weight = ctx.weight('kernel', [kh, kw, filters, null]);
  const layer: WeightedLayer = { kind: 'conv2d-transpose', name: ctx.name, layout: 'hwoi', shape: [kh, kw, filters, cin], weight, strides, padding: pad };
  return kernelLayers(ctx, layer, filters);
});

/** The depthwise part of DepthwiseConv2D / SeparableConv2D ('depthwise_kernel' [kh, kw, C, M]). */
function depthwiseKernel(ctx: LayerCtx, name: string): Layer & { kind: 'depthwise-conv2d' } {
  const [kh, kw] = pair(ctx, 'kernel_size');
  // tfjs leaves depth_multiplier out of SeparableConv2D configs: check it only when given.
  const m = ctx.config.depth_multiplier ?? null;
  if (m !== null && !(Number.isSafeInteger(m) && (m as number) > 0)) malformed(ctx, 'depth_multiplier', m);
  const weight = ctx.weight('depthwise_kernel', [kh, kw, null, m as number | null]);
  const [, , channels, multiplier] = ctx.weightShape('depthwise_kernel');
  return {
    kind: 'depthwise-conv2d', name, layout: 'hwcm', shape: [kh, kw, channels, multiplier], weight,
    strides: pair(ctx, 'strides', [1, 1]), padding: padding(ctx),
  };
}

const depthwiseConv2d = convolution((ctx) => {
  const layer = depthwiseKernel(ctx, ctx.name);
  return kernelLayers(ctx, layer, layer.shape[2] * layer.shape[3]);
});

/** SeparableConv2D = depthwise (strides, padding; no bias) then a 1x1 conv (bias, activation). */
const separableConv2d = convolution((ctx) => {
  const filters = integerConfig(ctx, 'filters');
  const depthwise = depthwiseKernel(ctx, `${ctx.name}/depthwise`);
  const mid = depthwise.shape[2] * depthwise.shape[3];
  const weight = ctx.weight('pointwise_kernel', [1, 1, mid, filters]);
  const pointwise: WeightedLayer = { kind: 'conv2d', name: ctx.name, layout: 'hwio', shape: [1, 1, mid, filters], weight, strides: [1, 1], padding: 'valid' };
  return kernelLayers(ctx, pointwise, filters, [depthwise]);
});

/** A norm's epsilon (default 1e-3, as tfjs). */
function epsilonOf(ctx: LayerCtx): number {
  const epsilon = ctx.config.epsilon ?? 1e-3;
  if (typeof epsilon !== 'number' || !Number.isFinite(epsilon) || epsilon < 0) malformed(ctx, 'epsilon', epsilon);
  return epsilon;
}

/** gamma (config scale) and beta (config center) of `channels` values, where the config keeps them. */
function affineWeights(ctx: LayerCtx, layer: { gamma?: Float32Array; beta?: Float32Array }, channels: number | null): void {
  if (ctx.config.scale !== false) layer.gamma = ctx.weight('gamma', [channels]);
  if (ctx.config.center !== false) layer.beta = ctx.weight('beta', [layer.gamma?.length ?? channels]);
}

const batchNorm: LayerSpec = {
  convert(ctx) {
    lastAxisOnly(ctx, 'axis');
    const shape = ctx.weightShape('moving_mean');
    const channels = shape.length === 1 ? shape[0] : null;
    const mean = ctx.weight('moving_mean', [channels]);
    const layer: Layer = { kind: 'batch-norm', name: ctx.name, epsilon: epsilonOf(ctx), mean, variance: ctx.weight('moving_variance', [mean.length]) };
    affineWeights(ctx, layer, mean.length);
    return [layer];
  },
};

/** LayerNormalization over the last axis only (tfjs's default), gamma and beta of one value per feature. */
const layerNorm: LayerSpec = {
  convert(ctx) {
    lastAxisOnly(ctx, 'axis');
    const layer: Layer = { kind: 'layer-norm', name: ctx.name, epsilon: epsilonOf(ctx) };
    affineWeights(ctx, layer, null);
    return [layer];
  },
};

/** PReLU with one slope per channel: alpha is [..., 1, C] (shared_axes covering every axis but the last). */
const prelu: LayerSpec = {
  convert(ctx) {
    const shape = ctx.weightShape('alpha');
    const perChannel = shape.length === ctx.inputRanks[0] - 1 && shape.slice(0, -1).every((d) => d === 1);
    if (!perChannel) ctx.unsupported(`alpha of shape [${shape.join(', ')}] (enorm supports one slope per channel: shared_axes on every axis but the last)`);
    return [{ kind: 'leaky-relu', name: ctx.name, alpha: ctx.weight('alpha', [...shape]) }];
  },
};

function pool(kind: 'max-pool' | 'avg-pool'): LayerSpec {
  return mapLayer(4, false, (ctx) => {
    const size = pair(ctx, 'pool_size', [2, 2]);
    return [{ kind, name: ctx.name, size, strides: pair(ctx, 'strides', size), padding: padding(ctx) }];
  });
}

function globalPool(kind: 'global-avg-pool' | 'global-max-pool'): LayerSpec {
  return mapLayer(2, false, (ctx) => {
    if (ctx.config.keepdims === true) ctx.unsupported('keepdims true');
    return [{ kind, name: ctx.name }];
  });
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
    if (max === null && typeof slope === 'number' && slope > 0 && Number.isFinite(slope)) return [{ kind: 'leaky-relu', name: ctx.name, alpha: slope }];
    if (max === 6 && slope === 0) return [{ kind: 'activation', fn: 'relu6', name: ctx.name }];
    return ctx.unsupported(`max_value ${describe(max)} with negative_slope ${describe(slope)}`);
  },
};

const leakyRelu: LayerSpec = {
  convert(ctx) {
    const alpha = ctx.config.alpha ?? ctx.config.negative_slope ?? 0.3;
    if (typeof alpha !== 'number' || !Number.isFinite(alpha)) malformed(ctx, 'alpha', alpha);
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

/**
 * tfjs class name -> converter. A Map, not an object: a class_name of 'constructor',
 * 'toString' or '__proto__' must find nothing rather than an Object.prototype member.
 */
export const LAYERS: ReadonlyMap<string, LayerSpec> = new Map([
  ['Dense', dense],
  ['Conv2D', conv2d],
  ['Conv2DTranspose', conv2dTranspose],
  ['DepthwiseConv2D', depthwiseConv2d],
  ['SeparableConv2D', separableConv2d],
  ['BatchNormalization', batchNorm],
  ['LayerNormalization', layerNorm],
  ['PReLU', prelu],
  ['MaxPooling2D', pool('max-pool')],
  ['MaxPool2D', pool('max-pool')],
  ['AveragePooling2D', pool('avg-pool')],
  ['AvgPool2D', pool('avg-pool')],
  ['GlobalAveragePooling2D', globalPool('global-avg-pool')],
  ['GlobalAvgPool2D', globalPool('global-avg-pool')],
  ['GlobalMaxPooling2D', globalPool('global-max-pool')],
  ['GlobalMaxPool2D', globalPool('global-max-pool')],
  ['Flatten', flatten],
  ['Dropout', dropout],
  ['SpatialDropout1D', dropout],
  ['SpatialDropout2D', dropout],
  ['SpatialDropout3D', dropout],
  ['ReLU', relu],
  ['LeakyReLU', leakyRelu],
  ['Activation', activationLayer],
  ['Softmax', softmax],
  ['Add', merge('add')],
  ['Concatenate', merge('concat')],
]);

/** `${src}: layer 'name' (ClassName)` with both cleaned. */
export function layerLabel(src: string, name: string, className: string): string {
  return `${src}: layer ${quote(name)} (${clean(className)})`;
}
