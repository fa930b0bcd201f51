import { ENormError } from '../errors.js';
import { LAYER_KINDS, layerName, type Companion, type Layer } from './layers.js';

const ACTIVATIONS = new Set(['sigmoid', 'tanh', 'softmax', 'gelu', 'elu', 'selu', 'softplus', 'swish', 'relu6']);
const LAYOUTS: Record<string, readonly string[]> = {
  dense: ['io', 'oi'],
  conv2d: ['hwio', 'oihw'],
  'depthwise-conv2d': ['hwcm', 'oihw'],
};
const RANK: Record<string, number> = { dense: 2, conv2d: 4, 'depthwise-conv2d': 4 };

/** A tensor the engine may rewrite: checked for type, finiteness and aliasing. */
export interface MutableTensor {
  layerIndex: number;
  layer: string;
  tensor: string;
  data: Float32Array;
}

/** Number of output units of a weighted layer, from its shape and layout (shape already validated). */
export function outputUnits(layer: Layer): number {
  switch (layer.kind) {
    case 'dense': return (layer.layout ?? 'io') === 'io' ? layer.shape[1] : layer.shape[0];
    case 'conv2d': return (layer.layout ?? 'hwio') === 'hwio' ? layer.shape[3] : layer.shape[0];
    case 'depthwise-conv2d': return (layer.layout ?? 'hwcm') === 'hwcm' ? layer.shape[2] * layer.shape[3] : layer.shape[0];
    default: return 0;
  }
}

export type WeightedLayer = Extract<Layer, { kind: 'dense' | 'conv2d' | 'depthwise-conv2d' }>;

/** The output unit that flat weight index x belongs to, per kind and layout. */
export function outputUnitOf(layer: WeightedLayer): (x: number) => number {
  const units = outputUnits(layer);
  const s: readonly number[] = layer.shape;
  switch (layer.kind) {
    case 'dense': return (layer.layout ?? 'io') === 'io' ? (x) => x % units : (x) => Math.floor(x / s[1]);
    case 'conv2d': return (layer.layout ?? 'hwio') === 'hwio' ? (x) => x % units : (x) => Math.floor(x / (s[1] * s[2] * s[3]));
    case 'depthwise-conv2d': return (layer.layout ?? 'hwcm') === 'hwcm' ? (x) => x % units : (x) => Math.floor(x / (s[2] * s[3]));
  }
}

/**
 * Checks every layer on its own (kinds, tensor types, shapes vs lengths, layouts, NaN/Inf,
 * companions, hyper-parameters) and that no two rewritable tensors share memory.
 * Returns the rewritable tensors. Reads only; throws ENormError naming the layer.
 */
export function validateLayers(net: readonly Layer[]): MutableTensor[] {
  const mutable: MutableTensor[] = [];
  net.forEach((layer, k) => {
    const name = layerName(layer, k);
    const at = (tensor?: string, index?: number) => ({ layerIndex: k, layer: name, tensor, index });
    const fail = (code: ENormError['code'], msg: string, tensor?: string, index?: number): never => {
      throw new ENormError(code, `layer '${name}' (${String(layer.kind)}): ${msg}`, at(tensor, index));
    };
    if (!LAYER_KINDS.includes(layer.kind)) {
      throw new ENormError('E_LAYER_KIND', `layer '${name}': unknown kind '${String(layer.kind)}'; supported: ${LAYER_KINDS.join(', ')}`, at());
    }
    const float32 = (tensor: string, value: unknown, length?: number): Float32Array => {
      if (!(value instanceof Float32Array)) fail('E_TYPE', `${tensor} must be a Float32Array`, tensor);
      const data = value as Float32Array;
      if (length !== undefined && data.length !== length) {
        fail('E_SHAPE', `${tensor} has ${data.length} elements, expected ${length}`, tensor);
      }
      const bad = firstNonFiniteIndex(data);
      if (bad >= 0) fail('E_NONFINITE', `${tensor}[${bad}] is ${data[bad]}`, tensor, bad);
      return data;
    };
    const rewritable = (tensor: string, value: unknown, length: number, companions: Companion | undefined) => {
      const data = float32(tensor, value, length);
      mutable.push({ layerIndex: k, layer: name, tensor, data });
      companionList(companions).forEach((m, i) => {
        const cname = `companion ${i} of ${tensor}`;
        mutable.push({ layerIndex: k, layer: name, tensor: cname, data: float32(cname, m, length) });
      });
    };
    const positiveInts = (what: string, v: unknown, rank?: number): number[] => {
      const arr = typeof v === 'number' ? [v] : v;
      if (!Array.isArray(arr) || (rank !== undefined && arr.length !== rank) || arr.some((x) => !Number.isInteger(x) || x <= 0)) {
        fail('E_SHAPE', `${what} must be ${rank !== undefined ? `${rank} ` : ''}positive integers, got ${JSON.stringify(v)}`);
      }
      return arr as number[];
    };
    const window2d = (what: string, v: unknown) => {
      if (typeof v === 'number') positiveInts(what, v);
      else positiveInts(what, v, 2);
    };
    const padding = (v: unknown) => {
      if (v !== undefined && v !== 'same' && v !== 'valid') fail('E_OPTION', `padding must be 'same' or 'valid', got ${JSON.stringify(v)}`);
    };

    switch (layer.kind) {
      case 'dense':
      case 'conv2d':
      case 'depthwise-conv2d': {
        const layout = layer.layout ?? LAYOUTS[layer.kind][0];
        if (!LAYOUTS[layer.kind].includes(layout)) {
          fail('E_LAYOUT', `layout '${layout}' is not one of ${LAYOUTS[layer.kind].join(', ')}`);
        }
        const shape = positiveInts('shape', layer.shape, RANK[layer.kind]);
        if (layer.kind === 'depthwise-conv2d' && layout === 'oihw' && shape[1] !== 1) {
          fail('E_SHAPE', `an 'oihw' depthwise kernel is [channels*multiplier, 1, kh, kw]; dimension 1 is ${shape[1]}`);
        }
        const size = shape.reduce((a, b) => a * b, 1);
        rewritable('weight', layer.weight, size, layer.companions?.weight);
        const units = outputUnits(layer);
        if (layer.bias !== undefined) rewritable('bias', layer.bias, units, layer.companions?.bias);
        else if (layer.companions?.bias !== undefined) fail('E_SHAPE', 'companions.bias given but the layer has no bias', 'bias');
        if (layer.kind !== 'dense') {
          if (layer.strides !== undefined) window2d('strides', layer.strides);
          padding(layer.padding);
        }
        break;
      }
      case 'batch-norm': {
        const mean = float32('mean', layer.mean);
        const n = mean.length;
        if (n === 0) fail('E_SHAPE', 'mean is empty', 'mean');
        float32('variance', layer.variance, n);
        if (layer.gamma !== undefined) rewritable('gamma', layer.gamma, n, layer.companions?.gamma);
        else if (layer.companions?.gamma !== undefined) fail('E_SHAPE', 'companions.gamma given but the layer has no gamma', 'gamma');
        if (layer.beta !== undefined) rewritable('beta', layer.beta, n, layer.companions?.beta);
        else if (layer.companions?.beta !== undefined) fail('E_SHAPE', 'companions.beta given but the layer has no beta', 'beta');
        if (layer.epsilon !== undefined && !(Number.isFinite(layer.epsilon) && layer.epsilon >= 0)) {
          fail('E_OPTION', `epsilon must be a finite number >= 0, got ${layer.epsilon}`);
        }
        break;
      }
      case 'leaky-relu':
        if (layer.alpha !== undefined && !Number.isFinite(layer.alpha)) fail('E_OPTION', `alpha must be finite, got ${layer.alpha}`);
        break;
      case 'activation':
        if (!ACTIVATIONS.has(layer.fn)) {
          fail('E_LAYER_KIND', `activation '${String(layer.fn)}' is not supported; supported: ${[...ACTIVATIONS].join(', ')} (relu, leaky-relu and identity are layers of their own)`);
        }
        break;
      case 'max-pool':
      case 'avg-pool':
        window2d('size', layer.size);
        if (layer.strides !== undefined) window2d('strides', layer.strides);
        padding(layer.padding);
        break;
      case 'dropout':
        if (layer.rate !== undefined && !(layer.rate >= 0 && layer.rate < 1)) fail('E_OPTION', `rate must be in [0, 1), got ${layer.rate}`);
        break;
      case 'flatten':
        if (layer.order !== undefined && layer.order !== 'channels-last' && layer.order !== 'channels-first') {
          fail('E_OPTION', `order must be 'channels-last' or 'channels-first', got ${JSON.stringify(layer.order)}`);
        }
        break;
      case 'input':
        if (layer.shape !== undefined) positiveInts('shape', layer.shape);
        break;
      default:
        break;
    }
  });
  checkNoAliasing(mutable);
  return mutable;
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

/** Rescaling one memory region twice (two layers sharing an array) would break the function. */
function checkNoAliasing(tensors: MutableTensor[]): void {
  const byBuffer = new Map<ArrayBufferLike, MutableTensor[]>();
  for (const t of tensors) {
    if (t.data.length === 0) continue;
    const list = byBuffer.get(t.data.buffer) ?? [];
    list.push(t);
    byBuffer.set(t.data.buffer, list);
  }
  for (const list of byBuffer.values()) {
    list.sort((a, b) => a.data.byteOffset - b.data.byteOffset);
    for (let i = 1; i < list.length; i++) {
      const prev = list[i - 1];
      const cur = list[i];
      if (cur.data.byteOffset < prev.data.byteOffset + prev.data.byteLength) {
        throw new ENormError(
          'E_ALIAS',
          `layer '${cur.layer}' ${cur.tensor} shares memory with layer '${prev.layer}' ${prev.tensor}; give each tensor its own array`,
          { layerIndex: cur.layerIndex, layer: cur.layer, tensor: cur.tensor },
        );
      }
    }
  }
}
