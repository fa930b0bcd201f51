/**
 * ONNX ops to enorm layers, one function per op. An op not in OPS, or one whose operands or
 * attributes fall outside what a layer expresses, is cut (build.ts): left out of the network with
 * its inputs pinned and its outputs fresh inputs, and reported as a barrier. This is the one place
 * that decides how an op is rescaled (layer norms in norms.ts); a grouped Conv is a depthwise
 * layer (one input channel per group) or a conv2d with `groups`.
 *
 * Strides and padding are copied for enorm's own forward pass; the rescaling does not depend on
 * them (zero padding stays zero, every pool is positively homogeneous), and the CLI checks the
 * result with onnxruntime. Gemm's alpha and beta stay in the file: y = alpha A W + beta C is
 * linear in (W, C) per output unit, so rescaling W's columns and C's entries by d_j scales unit j
 * by d_j whatever alpha and beta are.
 */
import { WEIGHT_LAYOUTS, type BarrierActivation, type Layer, type Padding } from '../../network/layers.js';
import { shapeText } from '../shared.js';
import { quote } from '../text.js';
import { attr, epsilon, float, int, ints, type Op } from './attributes.js';
import type { Builder } from './build.js';
import { layerNormalization, reduceMean } from './norms.js';
import type { WireNode } from './wire.js';

/** A layer without its inputs (which the builder fills in). */
type Spec = Layer extends infer L ? (L extends Layer ? Omit<L, 'inputs'> : never) : never;
/** A weighted layer without the tensors that claim() supplies. */
type KernelSpec = { kind: 'dense' | 'conv2d' | 'depthwise-conv2d' | 'conv2d-transpose'; shape: number[]; layout: string; strides?: [number, number]; padding?: Padding; groups?: number };

/** Elementwise ops that are not positively homogeneous: enorm 'activation' barriers. */
const BARRIER_FNS: Record<string, BarrierActivation> = {
  Sigmoid: 'sigmoid', Tanh: 'tanh', Softmax: 'softmax', Elu: 'elu', Selu: 'selu', Softplus: 'softplus', Gelu: 'gelu',
};

/** A one-input layer of `kind` reading the node's first input, holding its first output. */
function unary(b: Builder, n: WireNode, layer: Spec): void {
  b.add({ ...layer, inputs: [b.source(n.inputs[0])] } as Layer, n.outputs[0]);
}

/** A bias of `out` units: dims [out], [1, out] (dense) or [out, 1, 1], [1, out, 1, 1] (conv). */
function isBiasShape(dims: number[] | undefined, out: number, conv: boolean): boolean {
  if (!dims) return false;
  const lead = dims.slice(0, dims.length - (conv ? 2 : 0));
  const rest = conv ? dims.slice(-2) : [];
  return (conv ? dims.length >= 3 : dims.length >= 1) && lead[lead.length - 1] === out && lead.slice(0, -1).every((d) => d === 1) && rest.every((d) => d === 1);
}

/**
 * The Add that only adds a constant bias to `tensor` (a MatMul's or bias-less Conv's output that
 * nothing else reads): its index and the bias's name, or undefined.
 */
function biasAdd(b: Builder, tensor: string, out: number, conv: boolean): { node: number; bias: string } | undefined {
  const readers = b.facts.consumers.get(tensor) ?? [];
  if (readers.length !== 1 || b.facts.outputs.has(tensor) || b.facts.uses.get(tensor) !== 1) return undefined;
  const add = b.nodes[readers[0]];
  if (add.opType !== 'Add' || add.domain !== '' || add.inputs.length !== 2) return undefined;
  const bias = add.inputs[0] === tensor ? add.inputs[1] : add.inputs[0];
  return isBiasShape(b.floatDims(bias), out, conv) ? { node: readers[0], bias } : undefined;
}

/** Adds a dense / conv layer, taking its bias from `bias` or from a following bias Add. */
function kernel(b: Builder, n: WireNode, k: number, layer: KernelSpec, weight: string, out: number, bias: string | undefined, conv: boolean, frozen?: string): void {
  let output = n.outputs[0];
  if (!bias && !frozen) {
    const fused = biasAdd(b, output, out, conv);
    if (fused) {
      b.absorbed.add(fused.node);
      output = b.nodes[fused.node].outputs[0];
      bias = fused.bias;
    }
  }
  const claims: { role: 'weight' | 'bias'; name: string }[] = [{ role: 'weight', name: weight }];
  if (bias) claims.push({ role: 'bias', name: bias });
  b.weighted(k, { ...layer, inputs: [b.source(n.inputs[0])] } as unknown as Layer, output, claims, frozen);
}

const gemm: Op = (b, n, k) => {
  const [, w, c] = n.inputs;
  const dims = b.floatDims(w);
  if (int(n, 'transA', 0) !== 0) return b.cut(k, 'Gemm with transA = 1 is not rescaled');
  if (!dims || dims.length !== 2) return b.cut(k, 'Gemm whose B is not a constant float matrix is not rescaled');
  const transB = int(n, 'transB', 0) === 1;
  const out = transB ? dims[0] : dims[1];
  let frozen: string | undefined;
  let bias = c || undefined;
  if (bias && !isBiasShape(b.floatDims(bias), out, false)) {
    if (!b.constant(bias)) return b.cut(k, 'Gemm whose C is computed is not rescaled');
    frozen = `Gemm's C ${shapeText(b.constant(bias)?.tensor?.dims ?? [])} is not one bias per output unit: the layer is not rescaled`;
    bias = undefined;
  }
  const layer: KernelSpec = { kind: 'dense', shape: [dims[0], dims[1]], layout: transB ? 'oi' : 'io' };
  kernel(b, n, k, layer, w, out, bias, false, frozen);
};

const matmul: Op = (b, n, k) => {
  const dims = b.floatDims(n.inputs[1]);
  if (!dims || dims.length !== 2 || b.constant(n.inputs[0])) return b.cut(k, 'MatMul without a constant 2-D float second operand is not rescaled');
  kernel(b, n, k, { kind: 'dense', shape: [dims[0], dims[1]], layout: 'io' }, n.inputs[1], dims[1], undefined, false);
};

function padding(n: WireNode): Padding {
  const auto = attr(n, 'auto_pad')?.s ?? 'NOTSET';
  if (auto === 'SAME_UPPER' || auto === 'SAME_LOWER') return 'same';
  return (ints(n, 'pads') ?? []).some((p) => p !== 0) ? 'same' : 'valid';
}

/**
 * Records, for enorm's own forward pass, a Conv or pool whose window enorm's 'valid' / TF-'same'
 * padding does not reproduce: dilations other than 1, SAME_LOWER with an odd total, or explicit pads
 * other than TF 'same' (total = max((ceil(H / s) - 1) s + k - H, 0), floor half before) for the
 * input's known size. With an unknown size only stride 1 with (k - 1) / 2 on each side is exact.
 */
function checkWindow(b: Builder, n: WireNode, kernel: readonly number[]): void {
  const what = `${n.opType} ${quote(n.name || n.outputs[0] || '?')}`;
  if ((ints(n, 'dilations') ?? []).some((d) => d !== 1)) {
    b.forwardDiffers.push(`${what} is dilated`);
    return;
  }
  const auto = attr(n, 'auto_pad')?.s ?? 'NOTSET';
  const s = strides(n);
  const size = b.dims.get(n.inputs[0])?.slice(2);
  const total = (axis: number): number | undefined => {
    const h = size?.[axis];
    return typeof h === 'number' && h > 0 ? Math.max((Math.ceil(h / s[axis]) - 1) * s[axis] + kernel[axis] - h, 0) : undefined;
  };
  if (auto === 'VALID' || auto === 'SAME_UPPER') return;
  const totals = [total(0), total(1)];
  if (auto === 'SAME_LOWER') {
    if (!totals.every((t) => t !== undefined && t % 2 === 0)) b.forwardDiffers.push(`${what} pads SAME_LOWER`);
    return;
  }
  const pads = ints(n, 'pads') ?? [0, 0, 0, 0];
  if (pads.every((p) => p === 0)) return;
  const tfSame = totals.every((t) => t !== undefined)
    ? [Math.floor(totals[0]! / 2), Math.floor(totals[1]! / 2), totals[0]! - Math.floor(totals[0]! / 2), totals[1]! - Math.floor(totals[1]! / 2)]
    : s.every((x) => x === 1) && kernel.every((x) => x % 2 === 1) ? [(kernel[0] - 1) / 2, (kernel[1] - 1) / 2, (kernel[0] - 1) / 2, (kernel[1] - 1) / 2] : undefined;
  if (!tfSame || pads.length !== 4 || pads.some((p, i) => p !== tfSame[i])) b.forwardDiffers.push(`${what} has pads [${pads.join(', ')}], not TF 'same'`);
}
const strides = (n: WireNode): [number, number] => {
  const s = ints(n, 'strides');
  return s && s.length === 2 ? [s[0], s[1]] : [1, 1];
};

const conv: Op = (b, n, k) => {
  const dims = b.floatDims(n.inputs[1]);
  if (!dims || dims.length !== 4) return b.cut(k, 'Conv without a constant 4-D float kernel (only 2-D convolutions) is not rescaled');
  const group = int(n, 'group', 1);
  const [o, i, kh, kw] = dims;
  const sliding = { shape: [o, i, kh, kw] as [number, number, number, number], layout: 'oihw' as const, strides: strides(n), padding: padding(n) };
  checkWindow(b, n, [kh, kw]);
  const bias = n.inputs[2] || undefined;
  if (bias && !isBiasShape(b.floatDims(bias), o, false)) return b.cut(k, 'Conv whose bias is not a constant of one value per output channel is not rescaled');
  if (group === 1) return kernel(b, n, k, { kind: 'conv2d', ...sliding }, n.inputs[1], o, bias, true);
  if (group > 1 && i === 1 && o % group === 0) return kernel(b, n, k, { kind: 'depthwise-conv2d', ...sliding }, n.inputs[1], o, bias, true);
  // Grouped: weight [o, in / group, kh, kw], output channel c reads the input channels of group floor(c / (o / group)).
  if (group > 1 && o % group === 0) return kernel(b, n, k, { kind: 'conv2d', ...sliding, groups: group }, n.inputs[1], o, bias, true);
  b.cut(k, `grouped Conv (group ${group}, ${o} output channels) is not rescaled: the output channels are not divisible by the groups`);
};

/** Whether the network has helper L2's `conv2d-transpose` kind with the ONNX layout (checked at run time, so this compiles before it lands). */
const HAS_CONV_TRANSPOSE = (WEIGHT_LAYOUTS as Record<string, readonly string[] | undefined>)['conv2d-transpose']?.includes('iohw') === true;

/**
 * The enorm padding of a ConvTranspose with kernel [kh, kw] and strides s, or undefined: 'valid'
 * (no pads, output (in - 1) s + k, which is TF's for k >= s) or TF 'same' (output in * s: total
 * padding k - s per axis, floor((k - s) / 2) before), given as SAME_UPPER or as those pads.
 */
function transposePadding(n: WireNode, kernel: number[], s: [number, number]): Padding | undefined {
  const auto = attr(n, 'auto_pad')?.s ?? 'NOTSET';
  const pads = ints(n, 'pads') ?? [0, 0, 0, 0];
  const total = kernel.map((kk, i) => kk - s[i]);
  if (total.some((t) => t < 0) || pads.length !== 4) return undefined;
  if (auto === 'VALID' || (auto === 'NOTSET' && pads.every((p) => p === 0))) return 'valid';
  const same = total.every((t) => t % 2 === 0) ? ['SAME_UPPER', 'SAME_LOWER'] : ['SAME_UPPER'];
  if (same.includes(auto)) return 'same';
  const before = total.map((t) => Math.floor(t / 2));
  const tfSame = [...before, ...total.map((t, i) => t - before[i])];
  return auto === 'NOTSET' && pads.every((p, i) => p === tfSame[i]) ? 'same' : undefined;
}

/** ConvTranspose, weight [in, out / group, kh, kw] ('iohw'): a conv2d-transpose when group 1, dilations 1, no output padding or shape. */
const convTranspose: Op = (b, n, k) => {
  const dims = b.floatDims(n.inputs[1]);
  if (!HAS_CONV_TRANSPOSE) return b.cut(k, 'ConvTranspose is not rescaled yet (this build has no conv2d-transpose layer)');
  if (!dims || dims.length !== 4) return b.cut(k, 'ConvTranspose without a constant 4-D float kernel (only 2-D) is not rescaled');
  const [i, o, kh, kw] = dims;
  const s = strides(n);
  const pad = transposePadding(n, [kh, kw], s);
  const plain = int(n, 'group', 1) === 1 && (ints(n, 'dilations') ?? []).every((d) => d === 1) && (ints(n, 'output_padding') ?? []).every((p) => p === 0) && !attr(n, 'output_shape');
  if (!plain || !pad) return b.cut(k, 'ConvTranspose with groups, dilations, output padding or shape, or pads other than none or TF \'same\' is not rescaled');
  const bias = n.inputs[2] || undefined;
  if (bias && !isBiasShape(b.floatDims(bias), o, false)) return b.cut(k, 'ConvTranspose whose bias is not a constant of one value per output channel is not rescaled');
  kernel(b, n, k, { kind: 'conv2d-transpose', shape: [i, o, kh, kw], layout: 'iohw', strides: s, padding: pad }, n.inputs[1], o, bias, true);
};

const batchNorm: Op = (b, n, k) => {
  const [, scale, beta, mean, variance] = n.inputs;
  const c = b.floatDims(scale)?.[0];
  const ok = c !== undefined && [scale, beta, mean, variance].every((t) => { const d = b.floatDims(t); return d && d.length === 1 && d[0] === c; });
  if (!ok || int(n, 'training_mode', 0) !== 0 || n.outputs.slice(1).some((o) => o !== '')) {
    return b.cut(k, 'BatchNormalization in training mode or without constant per-channel parameters is not rescaled');
  }
  const stats = b.claim(mean, n.outputs[0], 'gamma', k).data;
  const vars = b.claim(variance, n.outputs[0], 'gamma', k).data;
  const layer = { kind: 'batch-norm', inputs: [b.source(n.inputs[0])], mean: stats, variance: vars, epsilon: epsilon(n, k) } as Layer;
  b.weighted(k, layer, n.outputs[0], [{ role: 'gamma', name: scale }, { role: 'beta', name: beta }]);
};

const clip: Op = (b, n, k) => {
  const fromInputs = n.inputs.length > 1;
  const bound = (index: number, key: string, none: number): number | undefined => {
    if (!fromInputs) return float(n, key, none);
    const name = n.inputs[index];
    if (!name) return none;
    const v = b.values(name);
    return v && v.length === 1 ? v[0] : undefined;
  };
  const min = bound(1, 'min', -Infinity);
  const max = bound(2, 'max', Infinity);
  if (min === 0 && max === Infinity) return unary(b, n, { kind: 'relu' });
  if (min === 0 && max === 6) return unary(b, n, { kind: 'activation', fn: 'relu6' });
  b.cut(k, `Clip to [${min ?? '?'}, ${max ?? '?'}] is not rescaled`);
};

/**
 * PRelu(x, slope) = x for x >= 0, slope * x below: positively homogeneous for any slope, so a
 * leaky-relu. One slope ([], [1]) or one per channel: [C] then ones up to rank(x) - 1 axes
 * ([C] on [N, C], [C, 1, 1] on [N, C, H, W]), optionally behind a leading 1. Other shapes would
 * broadcast along other axes than the channels: cut.
 */
const prelu: Op = (b, n, k) => {
  const slope = b.values(n.inputs[1]);
  const dims = b.floatDims(n.inputs[1]) ?? b.dims.get(n.inputs[1]);
  const rank = b.dims.get(n.inputs[0])?.length;
  if (!slope || slope.length === 0 || !dims || !slope.every(Number.isFinite)) return b.cut(k, 'PRelu whose slope is not a finite float constant is not rescaled');
  if (slope.length === 1) return unary(b, n, { kind: 'leaky-relu', alpha: slope[0] });
  const channels = dims.length === rank ? dims.slice(1) : dims;
  const perChannel = rank !== undefined && rank >= 2 && channels.length === rank - 1 && (dims.length === channels.length || dims[0] === 1) && channels.slice(1).every((d) => d === 1);
  if (!perChannel) return b.cut(k, `PRelu with a slope of shape ${shapeText(dims)} on a ${rank === undefined ? 'tensor of unknown rank' : `rank-${rank} tensor`} is not one slope per channel: not rescaled`);
  unary(b, n, { kind: 'leaky-relu', alpha: Float32Array.from(slope) });
};

function pool(kind: 'max-pool' | 'avg-pool'): Op {
  return (b, n, k) => {
    const size = ints(n, 'kernel_shape');
    if (!size || size.length !== 2 || n.outputs.slice(1).some((o) => o !== '')) return b.cut(k, `${n.opType} other than a 2-D pool with one output is not rescaled`);
    checkWindow(b, n, size);
    unary(b, n, { kind, size: [size[0], size[1]], strides: strides(n), padding: padding(n) });
  };
}

const flatten: Op = (b, n, k) => {
  if (int(n, 'axis', 1) !== 1) return b.cut(k, 'Flatten on an axis other than 1 is not rescaled');
  unary(b, n, { kind: 'flatten', order: 'channels-first' });
};

/** A Reshape to [0, -1] or [0, K] keeps the batch axis and flattens the rest (row-major = channels-first). */
const reshape: Op = (b, n, k) => {
  const shape = b.values(n.inputs[1]);
  const flattens = shape && shape.length === 2 && shape[0] === 0 && int(n, 'allowzero', 0) === 0 && (shape[1] === -1 || shape[1] > 0);
  if (!flattens) return b.cut(k, 'Reshape other than to [0, -1] (a flatten that keeps the batch axis) is not rescaled');
  unary(b, n, { kind: 'flatten', order: 'channels-first' });
};

const merge = (kind: 'add' | 'concat'): Op => (b, n, k) => {
  const ins = n.inputs.filter((t) => t !== '');
  if (kind === 'concat' && int(n, 'axis', 0) !== 1) return b.cut(k, 'Concat on an axis other than 1 (the channels) is not rescaled');
  if (ins.length === 1) return unary(b, n, { kind: 'identity' });
  b.add({ kind, inputs: ins.map((t) => b.source(t)) } as Layer, n.outputs[0]);
};

export const OPS: Record<string, Op> = {
  Gemm: gemm,
  MatMul: matmul,
  Conv: conv,
  ConvTranspose: convTranspose,
  BatchNormalization: batchNorm,
  LayerNormalization: layerNormalization,
  ReduceMean: reduceMean,
  Relu: (b, n) => unary(b, n, { kind: 'relu' }),
  LeakyRelu: (b, n, k) => {
    const alpha = float(n, 'alpha', 0.01);
    return Number.isFinite(alpha) ? unary(b, n, { kind: 'leaky-relu', alpha }) : b.cut(k, `LeakyRelu with alpha ${alpha} is not rescaled`);
  },
  PRelu: prelu,
  Clip: clip,
  MaxPool: pool('max-pool'),
  AveragePool: pool('avg-pool'),
  GlobalAveragePool: (b, n) => unary(b, n, { kind: 'global-avg-pool' }),
  GlobalMaxPool: (b, n) => unary(b, n, { kind: 'global-max-pool' }),
  Flatten: flatten,
  Reshape: reshape,
  Add: merge('add'),
  Sum: merge('add'),
  Concat: merge('concat'),
  Dropout: (b, n) => unary(b, n, { kind: 'dropout' }),
  Identity: (b, n) => unary(b, n, { kind: 'identity' }),
  ...Object.fromEntries(Object.entries(BARRIER_FNS).map(([op, fn]) => [op, (b: Builder, n: WireNode) => unary(b, n, { kind: 'activation', fn })])),
};

/** Why a node with subgraphs is cut: they may compute anything from its inputs and the outer tensors they read. */
function subgraphReason(n: WireNode): string {
  const outer = n.scopeReads.filter((t) => !n.inputs.includes(t)).length;
  return `ONNX op ${n.opType} with subgraphs is not rescaled: its inputs and the ${outer} outer tensor${outer === 1 ? '' : 's'} its subgraphs read keep scale 1, and their weights are kept as they are`;
}

/** Maps node `k` (not a Constant, not absorbed): its op's function, or the cut. */
export function mapNode(b: Builder, k: number): void {
  const n = b.nodes[k];
  const op = n.domain === '' || n.domain === 'ai.onnx' ? OPS[n.opType] : undefined;
  if (n.attributes.some((a) => a.subgraph)) return b.cut(k, subgraphReason(n));
  if (!op || n.outputs.length === 0 || !n.outputs[0] || !n.inputs[0]) return b.cut(k, `ONNX op ${n.domain ? `${n.domain}.` : ''}${n.opType} is not rescaled: its inputs keep scale 1`);
  op(b, n, k);
}
