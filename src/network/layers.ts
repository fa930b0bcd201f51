/**
 * The network description users hand to `balance` / `ENorm`: a list of layers in
 * topological order. A layer reads the previous layer unless it names its `inputs`
 * (names of earlier layers), which is how residual Add and Concat graphs are written.
 * Layers that nothing reads are the network's outputs.
 */

/** The kinds with a kernel (`weight`, `shape`, `layout`); their geometry is in geometry.ts. */
export const WEIGHTED_KINDS = ['dense', 'conv2d', 'depthwise-conv2d', 'conv2d-transpose'] as const;
export type WeightedKind = (typeof WEIGHTED_KINDS)[number];

/**
 * Weight layouts per weighted kind, the default (tfjs) first:
 * dense 'io' = [in, out], 'oi' = [out, in] (PyTorch / ONNX);
 * conv2d 'hwio' = [kh, kw, in, out], 'oihw' = [out, in, kh, kw] (PyTorch / ONNX);
 * depthwise 'hwcm' = [kh, kw, channels, multiplier], 'oihw' = [channels*multiplier, 1, kh, kw] (PyTorch groups=channels);
 * conv2d-transpose 'hwoi' = [kh, kw, out, in] (tfjs Conv2DTranspose), 'iohw' = [in, out, kh, kw] (PyTorch / ONNX ConvTranspose).
 */
export const WEIGHT_LAYOUTS = {
  dense: ['io', 'oi'],
  conv2d: ['hwio', 'oihw'],
  'depthwise-conv2d': ['hwcm', 'oihw'],
  'conv2d-transpose': ['hwoi', 'iohw'],
} as const satisfies Record<WeightedKind, readonly [string, ...string[]]>;
export type LayoutOf<K extends WeightedKind> = (typeof WEIGHT_LAYOUTS)[K][number];
export type DenseLayout = LayoutOf<'dense'>;
export type ConvLayout = LayoutOf<'conv2d'>;
export type DepthwiseLayout = LayoutOf<'depthwise-conv2d'>;
export type ConvTransposeLayout = LayoutOf<'conv2d-transpose'>;
/** Order in which Flatten lays out a [C, H, W] map: 'channels-last' = (h, w, c), 'channels-first' = (c, h, w). */
export type FlattenOrder = 'channels-last' | 'channels-first';
export type Padding = 'same' | 'valid';

/** Extra tensors that move inversely to a tensor (SGD momentum buffers): weight*d means companion/d. */
export type Companion = Float32Array | Float32Array[];

interface LayerBase {
  /** Unique name; used by `inputs` of later layers and in every error and report. */
  name?: string;
  /** Names of the layers this one reads. Default: the previous layer (or the network input). */
  inputs?: string[];
}

/**
 * A weighted layer's tensors may be marked as not enorm's to change: a layer another model also
 * uses, or a non-trainable one. It is a barrier (docs/ALGORITHM.md section 7, "Ownership"): its tensors are
 * left out of the plan (never read, written or counted in the energy), and every group whose scale
 * would land on them (its output units; the units it reads) keeps scale 1, reported in the barriers.
 */
interface Freezable {
  /** Why the layer must not change, e.g. 'trainable: false' or "shared with model 'B'". */
  frozen?: string;
}

export interface InputLayer extends LayerBase {
  kind: 'input';
  /** Per-example shape, e.g. [784] or [28, 28, 1] (NHWC) / [1, 28, 28] (NCHW). Needed only to run the network. */
  shape?: number[];
}

/** What every weighted layer has: a kernel of `shape` in `layout`, an optional bias (one per output unit). */
interface KernelLayer<K extends WeightedKind, S extends number[]> extends LayerBase, Freezable {
  kind: K;
  weight: Float32Array;
  shape: S;
  layout?: LayoutOf<K>;
  bias?: Float32Array;
  companions?: { weight?: Companion; bias?: Companion };
}

/** A kernel that slides over a feature map. */
interface Sliding {
  strides?: number | [number, number];
  padding?: Padding;
}

/** shape: [in, out] for layout 'io', [out, in] for 'oi'. */
export interface DenseLayer extends KernelLayer<'dense', [number, number]> {}

/**
 * shape: [kh, kw, in / groups, out] for 'hwio', [out, in / groups, kh, kw] for 'oihw'.
 * With `groups` G (default 1; in and out divisible by G), output channel o reads only the input
 * channels of its group g = floor(o / (out / G)), [g * in / G, (g + 1) * in / G) (PyTorch / ONNX `group`).
 */
export interface Conv2DLayer extends KernelLayer<'conv2d', [number, number, number, number]>, Sliding {
  groups?: number;
}

/** shape: [kh, kw, channels, multiplier] for 'hwcm', [channels*multiplier, 1, kh, kw] for 'oihw'. */
export interface DepthwiseConv2DLayer extends KernelLayer<'depthwise-conv2d', [number, number, number, number]>, Sliding {}

/**
 * The transpose (adjoint) of conv2d, as tfjs Conv2DTranspose and ONNX ConvTranspose (group 1, dilation 1,
 * output_padding 0): input pixel (iy, ix) adds x[iy, ix, i] * W[ky, kx, o, i] to output pixel
 * (iy*sh + ky - padTop, ix*sw + kx - padLeft), channel o. Output size per axis: 'valid' (H-1)*s + k,
 * pad 0; 'same' H*s, padTop = floor(max(k - s, 0) / 2) (TF; ONNX auto_pad SAME_UPPER).
 * shape: [kh, kw, out, in] for 'hwoi', [in, out, kh, kw] for 'iohw'.
 */
export interface Conv2DTransposeLayer extends KernelLayer<'conv2d-transpose', [number, number, number, number]>, Sliding {}

/**
 * Inference-mode batch normalisation: y = gamma * (x - mean) / sqrt(variance + epsilon) + beta.
 * It cancels any scale on its input, so the unit's scale goes on gamma and beta instead.
 */
export interface BatchNormLayer extends LayerBase, Freezable {
  kind: 'batch-norm';
  /** Absent means gamma = 1 (then the channel cannot carry a scale). */
  gamma?: Float32Array;
  /** Absent means beta = 0. */
  beta?: Float32Array;
  mean: Float32Array;
  variance: Float32Array;
  /** Default 1e-3 (tfjs / Keras). */
  epsilon?: number;
  companions?: { gamma?: Companion; beta?: Companion };
}

/**
 * Layer normalisation over the feature axis (a vector's features, a map's channels at each position):
 * y = gamma * (x - mean_f(x)) / sqrt(var_f(x) + epsilon) + beta, mean and (population) variance over
 * the features of one example (and position). It cancels only a uniform scale on its input, so the
 * layer before it keeps scale 1; its own units carry their scale on gamma and beta, as batch norm's.
 */
export interface LayerNormLayer extends LayerBase, Freezable {
  kind: 'layer-norm';
  /** Absent means gamma = 1 (then the features cannot carry a scale). */
  gamma?: Float32Array;
  /** Absent means beta = 0. */
  beta?: Float32Array;
  /** Default 1e-3 (tfjs / Keras; ONNX and PyTorch use 1e-5). */
  epsilon?: number;
  /** The normalised axis: only -1 (the feature / channel axis) is supported. Default -1. */
  axis?: number;
  companions?: { gamma?: Companion; beta?: Companion };
}

export interface ReluLayer extends LayerBase { kind: 'relu' }
/**
 * y = x for x >= 0, alpha * x for x < 0. Positively homogeneous for any slope (f(d x) = d f(x) for
 * d > 0), so it passes every unit's scale through; a per-channel `alpha` (PReLU) has one slope per
 * feature / channel.
 */
export interface LeakyReluLayer extends LayerBase {
  kind: 'leaky-relu';
  /** Slope for x < 0, one for all channels or one per channel (PReLU). Default 0.3 (tfjs). */
  alpha?: number | Float32Array;
}
export interface IdentityLayer extends LayerBase { kind: 'identity' }

/** Activations that are not positively homogeneous: a barrier for rescaling. */
export const BARRIER_ACTIVATIONS = ['sigmoid', 'tanh', 'softmax', 'gelu', 'elu', 'selu', 'softplus', 'swish', 'relu6'] as const;
export type BarrierActivation = (typeof BARRIER_ACTIVATIONS)[number];
export interface ActivationLayer extends LayerBase {
  kind: 'activation';
  fn: BarrierActivation;
}

export interface PoolLayer extends LayerBase {
  kind: 'max-pool' | 'avg-pool';
  size: number | [number, number];
  /** Default: equal to size. */
  strides?: number | [number, number];
  padding?: Padding;
}
export interface GlobalAvgPoolLayer extends LayerBase { kind: 'global-avg-pool' }
export interface GlobalMaxPoolLayer extends LayerBase { kind: 'global-max-pool' }
export interface DropoutLayer extends LayerBase { kind: 'dropout'; rate?: number }
export interface FlattenLayer extends LayerBase {
  kind: 'flatten';
  /** Default 'channels-last' (tfjs). */
  order?: FlattenOrder;
}
/** Elementwise sum of its inputs (a residual connection). */
export interface AddLayer extends LayerBase { kind: 'add'; inputs: string[] }
/** Concatenation of its inputs along the channel / feature axis. */
export interface ConcatLayer extends LayerBase { kind: 'concat'; inputs: string[] }

export type Layer =
  | InputLayer
  | DenseLayer
  | Conv2DLayer
  | DepthwiseConv2DLayer
  | Conv2DTransposeLayer
  | BatchNormLayer
  | LayerNormLayer
  | ReluLayer
  | LeakyReluLayer
  | IdentityLayer
  | ActivationLayer
  | PoolLayer
  | GlobalAvgPoolLayer
  | GlobalMaxPoolLayer
  | DropoutLayer
  | FlattenLayer
  | AddLayer
  | ConcatLayer;

export type LayerKind = Layer['kind'];
export type Network = Layer[];

/** Tensor roles a layer can own. */
export type TensorRole = 'weight' | 'bias' | 'gamma' | 'beta';

export const LAYER_KINDS = [
  'input', 'dense', 'conv2d', 'depthwise-conv2d', 'conv2d-transpose', 'batch-norm', 'layer-norm', 'relu', 'leaky-relu', 'identity',
  'activation', 'max-pool', 'avg-pool', 'global-avg-pool', 'global-max-pool', 'dropout', 'flatten', 'add', 'concat',
] as const satisfies readonly LayerKind[];

/** The layers with a kernel. */
export type WeightedLayer = Extract<Layer, { kind: WeightedKind }>;

/** The kinds whose tensors enorm rescales: the weighted ones and the norms (gamma, beta); `frozen` applies to them. */
export const RESCALED_KINDS = [...WEIGHTED_KINDS, 'batch-norm', 'layer-norm'] as const;

/**
 * Compile-time completeness: every kind is in LAYER_KINDS, every kind with a `weight` in
 * WEIGHTED_KINDS, every kind with `frozen` in RESCALED_KINDS. A new kind fails here until listed.
 */
type Unlisted<All, Listed> = [Exclude<All, Listed>] extends [never] ? true : Exclude<All, Listed>;
type FreezableKind<L = Layer> = L extends { kind: infer K } ? ('frozen' extends keyof L ? K : never) : never;
const listsAreComplete: [
  Unlisted<LayerKind, (typeof LAYER_KINDS)[number]>,
  Unlisted<Extract<Layer, { weight: Float32Array }>['kind'], WeightedKind>,
  Unlisted<FreezableKind, (typeof RESCALED_KINDS)[number]>,
] = [true, true, true];
void listsAreComplete;

/** Whether `layer` has a kernel (its geometry is in geometry.ts). */
export function isWeighted(layer: { kind: unknown }): layer is WeightedLayer {
  return (WEIGHTED_KINDS as readonly unknown[]).includes(layer.kind);
}

/** Whether `layer` is a norm whose gamma and beta carry its units' scale (batch-norm, layer-norm). */
export function isAffineNorm(layer: { kind: unknown }): layer is BatchNormLayer | LayerNormLayer {
  return layer.kind === 'batch-norm' || layer.kind === 'layer-norm';
}

/** The display name of layer `index`: its `name`, or `#index`. */
export function layerName(layer: { name?: string }, index: number): string {
  return layer.name ?? `#${index}`;
}
