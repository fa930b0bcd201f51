import { describeValue } from '../describe.js';
import { ENormError, layerError, safeName, type LayerAt } from '../errors.js';
import { kernelRank, layoutProblem, outputUnits, shapeProblem } from './geometry.js';
import { BARRIER_ACTIVATIONS, LAYER_KINDS, RESCALED_KINDS, layerName, type Companion, type Layer } from './layers.js';
import { readNetwork } from './read.js';

/** A tensor the engine may rewrite: checked for type, finiteness and aliasing. */
export interface MutableTensor {
  layerIndex: number;
  layer: string;
  tensor: string;
  data: Float32Array;
}

/** A tensor in the aliasing check: one the engine writes, or one it only reads (BN mean and variance). */
interface AliasEntry extends MutableTensor {
  written: boolean;
}

/** JSON for a message, or a description where JSON.stringify throws (BigInt, cycles, a throwing toJSON). */
function json(v: unknown): string {
  try {
    return JSON.stringify(v) ?? describeValue(v);
  } catch {
    return describeValue(v);
  }
}

/**
 * Whether v is a Float32Array: the %TypedArray% toStringTag getter reads the internal slot, so an
 * object with Float32Array.prototype set by hand is not one (and a Float32Array of another realm is).
 */
const typedArrayTag = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(Int8Array.prototype), Symbol.toStringTag)!.get!;
function isFloat32Array(v: unknown): v is Float32Array {
  return typedArrayTag.call(v) === 'Float32Array';
}

/**
 * The end of an exhaustive switch over layer kinds: `layer` is `never` there for the type checker,
 * so a kind added to Layer fails to compile until the switch handles it; at run time (a description
 * that skipped validation) an unknown kind is E_LAYER_KIND.
 */
export function unknownKind(layer: never, at: LayerAt): never {
  const kind: unknown = (layer as { kind?: unknown }).kind;
  throw layerError('E_LAYER_KIND', at, `unknown kind '${describeValue(kind)}'; supported: ${LAYER_KINDS.join(', ')}`);
}

/** A conv2d's `groups`: a positive integer dividing its output channels (its input channels are groups x the kernel's). */
function checkGroups(groups: unknown, outputs: number, at: LayerAt): void {
  if (typeof groups !== 'number' || !Number.isInteger(groups) || groups <= 0) {
    throw layerError('E_SHAPE', at, `groups must be a positive integer, got ${json(groups)}`);
  }
  if (outputs % groups !== 0) throw layerError('E_SHAPE', at, `${outputs} output channels are not divisible by groups = ${groups}`);
}

const isLayerKind = (kind: unknown): kind is Layer['kind'] => (LAYER_KINDS as readonly unknown[]).includes(kind);
const isBarrierActivation = (fn: unknown): boolean => (BARRIER_ACTIVATIONS as readonly unknown[]).includes(fn);

/**
 * Checks every layer on its own (kinds, tensor types, shapes vs lengths, layouts, NaN/Inf,
 * companions, hyper-parameters) and that no two rewritable tensors share memory.
 * Returns the rewritable tensors. Reads only; throws ENormError naming the layer.
 */
export function validateLayers(network: readonly Layer[]): MutableTensor[] {
  // One read of every field (getters, proxies): a plain copy, with the caller's Float32Arrays.
  const net = readNetwork(network);
  const mutable: MutableTensor[] = [];
  /** Everything the engine reads, for the aliasing check. */
  const touched: AliasEntry[] = [];
  net.forEach((layer, k) => {
    const name = layerName(layer, k);
    if (!isLayerKind(layer.kind)) unknownKind(layer as never, { layerIndex: k, layer: name });
    const at: LayerAt = { layerIndex: k, layer: name, kind: layer.kind };
    checkFrozen(layer, at);
    const float32 = (tensor: string, value: unknown, length?: number): Float32Array => {
      if (!isFloat32Array(value)) throw layerError('E_TYPE', at, `${tensor} must be a Float32Array, got ${describeValue(value)}`, { tensor });
      const data = value as Float32Array;
      if (length !== undefined && data.length !== length) {
        throw layerError('E_SHAPE', at, `${tensor} has ${data.length} elements, expected ${length}`, { tensor });
      }
      const bad = firstNonFiniteIndex(data);
      if (bad >= 0) throw layerError('E_NONFINITE', at, `${tensor}[${bad}] is ${data[bad]}`, { tensor, index: bad });
      return data;
    };
    // A frozen layer's tensors are never written: they only must not overlap anything that is.
    const written = (layer as { frozen?: unknown }).frozen === undefined;
    const register = (tensor: string, data: Float32Array, isWritten: boolean) => {
      const entry = { layerIndex: k, layer: name, tensor, data };
      if (isWritten) mutable.push(entry);
      touched.push({ ...entry, written: isWritten });
    };
    const rewritable = (tensor: string, value: unknown, length: number, companions: Companion | undefined) => {
      register(tensor, float32(tensor, value, length), written);
      companionList(companions).forEach((m, i) => {
        const cname = `companion ${i} of ${tensor}`;
        register(cname, float32(cname, m, length), written);
      });
    };
    const positiveInts = (what: string, v: unknown, rank?: number): number[] => {
      const arr = typeof v === 'number' ? [v] : v;
      if (!Array.isArray(arr) || (rank !== undefined && arr.length !== rank) || arr.some((x) => !Number.isInteger(x) || x <= 0)) {
        throw layerError('E_SHAPE', at, `${what} must be ${rank !== undefined ? `${rank} ` : ''}positive integers, got ${json(v)}`);
      }
      return arr as number[];
    };
    const window2d = (what: string, v: unknown) => {
      if (typeof v === 'number') positiveInts(what, v);
      else positiveInts(what, v, 2);
    };
    /** A norm's gamma and beta (`n` features; undefined: any) with their companions, and its epsilon. */
    const affine = (n: number | undefined) => {
      const norm = layer as Extract<Layer, { kind: 'batch-norm' | 'layer-norm' }>;
      for (const tensor of ['gamma', 'beta'] as const) {
        if (norm[tensor] !== undefined) rewritable(tensor, norm[tensor], n ?? (norm[tensor] as Float32Array).length, norm.companions?.[tensor]);
        else if (norm.companions?.[tensor] !== undefined) throw layerError('E_SHAPE', at, `companions.${tensor} given but the layer has no ${tensor}`, { tensor });
      }
      if (norm.epsilon !== undefined && !(Number.isFinite(norm.epsilon) && norm.epsilon >= 0)) {
        throw layerError('E_OPTION', at, `epsilon must be a finite number >= 0, got ${describeValue(norm.epsilon)}`);
      }
    };
    const padding = (v: unknown) => {
      if (v !== undefined && v !== 'same' && v !== 'valid') throw layerError('E_OPTION', at, `padding must be 'same' or 'valid', got ${json(v)}`);
    };

    switch (layer.kind) {
      case 'dense':
      case 'conv2d':
      case 'depthwise-conv2d':
      case 'conv2d-transpose': {
        const badLayout = layoutProblem(layer);
        if (badLayout !== undefined) throw layerError('E_LAYOUT', at, badLayout);
        const shape = positiveInts('shape', layer.shape, kernelRank(layer.kind));
        const badShape = shapeProblem(layer);
        if (badShape !== undefined) throw layerError('E_SHAPE', at, badShape);
        const size = shape.reduce((a, b) => a * b, 1);
        rewritable('weight', layer.weight, size, layer.companions?.weight);
        const units = outputUnits(layer);
        if (layer.bias !== undefined) rewritable('bias', layer.bias, units, layer.companions?.bias);
        else if (layer.companions?.bias !== undefined) throw layerError('E_SHAPE', at, 'companions.bias given but the layer has no bias', { tensor: 'bias' });
        if (layer.kind !== 'dense') {
          if (layer.strides !== undefined) window2d('strides', layer.strides);
          padding(layer.padding);
        }
        if (layer.kind === 'conv2d' && layer.groups !== undefined) checkGroups(layer.groups, units, at);
        break;
      }
      case 'batch-norm': {
        // Read-only, but rescaled memory under them would change the statistics: in the aliasing check.
        const mean = float32('mean', layer.mean);
        const n = mean.length;
        if (n === 0) throw layerError('E_SHAPE', at, 'mean is empty', { tensor: 'mean' });
        register('mean', mean, false);
        register('variance', float32('variance', layer.variance, n), false);
        affine(n);
        break;
      }
      case 'layer-norm': {
        if (layer.axis !== undefined && layer.axis !== -1) {
          throw layerError('E_OPTION', at, `axis must be -1 (layer-norm normalises the feature / channel axis only), got ${describeValue(layer.axis)}`);
        }
        const features = layer.gamma !== undefined ? float32('gamma', layer.gamma) : layer.beta !== undefined ? float32('beta', layer.beta) : undefined;
        if (features?.length === 0) throw layerError('E_SHAPE', at, `${layer.gamma !== undefined ? 'gamma' : 'beta'} is empty`, { tensor: layer.gamma !== undefined ? 'gamma' : 'beta' });
        affine(features?.length);
        break;
      }
      case 'leaky-relu': {
        const alpha: unknown = layer.alpha;
        if (typeof alpha === 'number' || alpha === undefined) {
          if (alpha !== undefined && !Number.isFinite(alpha)) throw layerError('E_OPTION', at, `alpha must be finite, got ${describeValue(alpha)}`);
          break;
        }
        // Per-channel slopes (PReLU): read as is, so rescaled memory under them would change the function.
        const slopes = float32('alpha', alpha);
        if (slopes.length === 0) throw layerError('E_SHAPE', at, 'alpha is empty: give one slope per channel, or a number', { tensor: 'alpha' });
        register('alpha', slopes, false);
        break;
      }
      case 'activation':
        if (!isBarrierActivation(layer.fn)) {
          throw layerError('E_LAYER_KIND', at, `activation '${describeValue(layer.fn)}' is not supported; supported: ${BARRIER_ACTIVATIONS.join(', ')} (relu, leaky-relu and identity are layers of their own)`);
        }
        break;
      case 'max-pool':
      case 'avg-pool':
        window2d('size', layer.size);
        if (layer.strides !== undefined) window2d('strides', layer.strides);
        padding(layer.padding);
        break;
      case 'dropout':
        if (layer.rate !== undefined && !(typeof layer.rate === 'number' && layer.rate >= 0 && layer.rate < 1)) throw layerError('E_OPTION', at, `rate must be in [0, 1), got ${describeValue(layer.rate)}`);
        break;
      case 'flatten':
        if (layer.order !== undefined && layer.order !== 'channels-last' && layer.order !== 'channels-first') {
          throw layerError('E_OPTION', at, `order must be 'channels-last' or 'channels-first', got ${json(layer.order)}`);
        }
        break;
      case 'input':
        if (layer.shape !== undefined) positiveInts('shape', layer.shape);
        break;
      case 'relu':
      case 'identity':
      case 'global-avg-pool':
      case 'global-max-pool':
      case 'add':
      case 'concat':
        break; // no fields of their own (inputs are the graph's)
      default:
        unknownKind(layer, at);
    }
  });
  checkNoAliasing(touched);
  return mutable;
}

/** `frozen` is the one-line reason a weighted layer must not change (it is quoted in the plan's barriers). */
function checkFrozen(layer: Layer, at: LayerAt): void {
  const frozen: unknown = (layer as { frozen?: unknown }).frozen;
  if (frozen === undefined) return;
  if (!(RESCALED_KINDS as readonly string[]).includes(layer.kind)) {
    throw layerError('E_OPTION', at, `frozen applies only to ${RESCALED_KINDS.join(', ')} layers (the ones with tensors enorm rescales)`);
  }
  if (typeof frozen !== 'string' || frozen.trim() === '' || /[\r\n]/.test(frozen)) {
    throw layerError('E_OPTION', at, `frozen must be a non-empty one-line string (the reason), got ${json(frozen)}`);
  }
}

export function companionList(c: Companion | undefined): Float32Array[] {
  if (c === undefined) return [];
  return Array.isArray(c) ? c : [c];
}

/** Index of the first NaN / Inf, or -1. */
export function firstNonFiniteIndex(a: ArrayLike<number>): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    // x - x is NaN exactly for NaN and +-Inf.
    if (x - x !== 0) return i;
  }
  return -1;
}

/**
 * Rescaling one memory region twice (two layers sharing an array) would break the function, and
 * so would rescaling memory the engine also reads as is (BN mean and variance, frozen tensors).
 * Per buffer, sorted by start, an interval overlaps an earlier one exactly when it starts before
 * that one's end: a written tensor clashes with the furthest-reaching earlier tensor of any kind,
 * a read-only one only with the furthest-reaching earlier written tensor. O(n log n).
 */
function checkNoAliasing(tensors: AliasEntry[]): void {
  const byBuffer = new Map<ArrayBufferLike, AliasEntry[]>();
  for (const t of tensors) {
    if (t.data.length === 0) continue;
    const list = byBuffer.get(t.data.buffer) ?? [];
    list.push(t);
    byBuffer.set(t.data.buffer, list);
  }
  const end = (t: AliasEntry) => t.data.byteOffset + t.data.byteLength;
  for (const list of byBuffer.values()) {
    list.sort((a, b) => a.data.byteOffset - b.data.byteOffset);
    let reachAny: AliasEntry | null = null;
    let reachWritten: AliasEntry | null = null;
    for (const cur of list) {
      const other = cur.written ? reachAny : reachWritten;
      if (other && cur.data.byteOffset < end(other)) {
        const readOnly = cur.written ? (other.written ? null : other) : cur;
        const why = readOnly ? `; enorm reads ${readOnly.tensor} as is while it rescales the other` : '';
        throw new ENormError(
          'E_ALIAS',
          `layer '${safeName(cur.layer)}' ${cur.tensor} shares memory with layer '${safeName(other.layer)}' ${other.tensor}${why}; give each tensor its own array`,
          { layerIndex: cur.layerIndex, layer: cur.layer, tensor: cur.tensor },
        );
      }
      if (!reachAny || end(cur) > end(reachAny)) reachAny = cur;
      if (cur.written && (!reachWritten || end(cur) > end(reachWritten))) reachWritten = cur;
    }
  }
}
