/**
 * Layer normalisation in ONNX, as enorm's `layer-norm` (the features of one example):
 *   y = gamma * (x - mean_f(x)) / sqrt(var_f(x) + eps) + beta,   x of shape [N, F].
 * Two forms: the opset-17 LayerNormalization op, and the decomposed pattern older exporters emit,
 *   m = ReduceMean(x, [-1]); d = Sub(x, m); v = ReduceMean(Pow(d, 2) or Mul(d, d), [-1]);
 *   y = Add(Mul(Div(d, Sqrt(Add(v, eps))), gamma), beta)          (the last Add optional),
 * matched from its first ReduceMean when every intermediate tensor is read only inside it. Only
 * gamma and beta change (they carry the features' scale); the layer before keeps scale 1
 * (compile.ts pins it). Any other axis, rank or operand is cut, so the function is always kept.
 */
import { epsilon, int, ints, isOp, type Op } from './attributes.js';
import type { Builder } from './build.js';
import type { WireNode } from './wire.js';

/** The feature count of a per-feature constant: dims [F] or [1, ..., 1, F]; undefined otherwise. */
function featureCount(b: Builder, name: string): number | undefined {
  const dims = b.floatDims(name);
  if (!dims || dims.length === 0 || dims.slice(0, -1).some((d) => d !== 1)) return undefined;
  return dims[dims.length - 1];
}

/** Why `x` with gamma `scale` and beta `bias` is not an enorm layer norm (undefined: it is one). */
function affineProblem(b: Builder, x: string, scale: string, bias: string | undefined): string | undefined {
  const dims = b.dims.get(x);
  if (b.constant(x)) return 'of a constant is not rescaled';
  if (dims?.length !== 2) return `of a ${dims ? `rank-${dims.length} tensor` : 'tensor of unknown rank'} is not rescaled: only the features of [N, F] are`;
  const f = featureCount(b, scale);
  if (f === undefined || (dims[1] !== null && dims[1] !== f)) return 'whose scale (gamma) is not a constant of one value per feature is not rescaled';
  if (bias && featureCount(b, bias) !== f) return 'whose bias (beta) is not a constant of one value per feature is not rescaled';
  return undefined;
}

/** Adds the layer norm of `x` (node k and the nodes it absorbs), output `output`, claiming gamma and beta. */
function addLayerNorm(b: Builder, k: number, x: string, output: string, epsilon: number, scale: string, bias: string | undefined): void {
  const claims: { role: 'gamma' | 'beta'; name: string }[] = [{ role: 'gamma', name: scale }];
  if (bias) claims.push({ role: 'beta', name: bias });
  b.weighted(k, { kind: 'layer-norm', inputs: [b.source(x)], epsilon, axis: -1 }, output, claims);
}

export const layerNormalization: Op = (b, n, k) => {
  const [x, scale, bias] = n.inputs;
  const axis = int(n, 'axis', -1);
  if (axis !== -1 && axis !== 1) return b.cut(k, `LayerNormalization on axis ${axis} is not rescaled: only the last axis of [N, F] is`);
  if (!scale) return b.cut(k, 'LayerNormalization without a scale is not rescaled');
  if (n.outputs.slice(1).some((o) => o !== '')) return b.cut(k, 'LayerNormalization whose Mean or InvStdDev output is used is not rescaled');
  const problem = affineProblem(b, x, scale, bias || undefined);
  if (problem) return b.cut(k, `LayerNormalization ${problem}`);
  addLayerNorm(b, k, x, n.outputs[0], epsilon(n, k), scale, bias || undefined);
};

/** The node that alone reads tensor `t` (read `uses` times, no graph output), or undefined. */
function soleReader(b: Builder, t: string, uses = 1): { node: WireNode; k: number } | undefined {
  const readers = b.facts.consumers.get(t) ?? [];
  if (readers.length !== 1 || b.facts.outputs.has(t) || b.facts.uses.get(t) !== uses) return undefined;
  return { node: b.nodes[readers[0]], k: readers[0] };
}

/** A ReduceMean of `input` over the last axis of a rank-2 tensor, keeping dims (attribute axes, or input axes from opset 18). */
function isFeatureMean(b: Builder, n: WireNode | undefined, input: string): boolean {
  if (!isOp(n, 'ReduceMean') || n.inputs[0] !== input || int(n, 'keepdims', 1) !== 1) return false;
  const axes = ints(n, 'axes') ?? (n.inputs[1] ? b.values(n.inputs[1]) : undefined);
  return axes?.length === 1 && (axes[0] === -1 || axes[0] === 1) && b.dims.get(input)?.length === 2;
}

/** Op `op`(a, c) or `op`(c, a): the other operand c, if it is a constant. */
function constantOperand(b: Builder, n: WireNode | undefined, op: string, a: string): string | undefined {
  if (!isOp(n, op) || n.inputs.length !== 2) return undefined;
  const other = n.inputs[0] === a ? n.inputs[1] : n.inputs[1] === a ? n.inputs[0] : undefined;
  return other && b.constant(other) ? other : undefined;
}

/** Pow(d, 2) or Mul(d, d): how many times it reads d, or 0 if it is neither. */
function squareReads(b: Builder, n: WireNode, d: string): number {
  if (isOp(n, 'Mul') && n.inputs.length === 2 && n.inputs[0] === d && n.inputs[1] === d) return 2;
  const exponent = isOp(n, 'Pow') && n.inputs[0] === d ? b.values(n.inputs[1]) : undefined;
  return exponent?.length === 1 && exponent[0] === 2 ? 1 : 0;
}

interface Decomposed { x: string; output: string; epsilon: number; scale: string; bias?: string; absorbed: number[] }

/** The decomposed layer norm starting at ReduceMean node k (see the header), or undefined. */
function matchDecomposed(b: Builder, k: number): Decomposed | undefined {
  const x = b.nodes[k].inputs[0];
  if (!isFeatureMean(b, b.nodes[k], x)) return undefined;
  const sub = soleReader(b, b.nodes[k].outputs[0]);
  if (!isOp(sub?.node, 'Sub') || sub.node.inputs[0] !== x) return undefined;
  const d = sub.node.outputs[0];
  const readers = (b.facts.consumers.get(d) ?? []).map((r) => ({ node: b.nodes[r], k: r }));
  const square = readers.find((r) => squareReads(b, r.node, d) > 0);
  const div = readers.find((r) => isOp(r.node, 'Div') && r.node.inputs[0] === d && r.node.inputs[1] !== d);
  if (!square || !div || readers.length !== 2 || b.facts.outputs.has(d) || b.facts.uses.get(d) !== squareReads(b, square.node, d) + 1) return undefined;
  const variance = soleReader(b, square.node.outputs[0]);
  if (!variance || !isFeatureMean(b, variance.node, square.node.outputs[0])) return undefined;
  const plusEps = soleReader(b, variance.node.outputs[0]);
  const eps = constantOperand(b, plusEps?.node, 'Add', variance.node.outputs[0]);
  const epsilon = b.values(eps);
  if (!plusEps || epsilon?.length !== 1 || !(epsilon[0] >= 0)) return undefined;
  const sqrt = soleReader(b, plusEps.node.outputs[0]);
  if (!isOp(sqrt?.node, 'Sqrt') || soleReader(b, sqrt.node.outputs[0])?.k !== div.k || div.node.inputs[1] !== sqrt.node.outputs[0]) return undefined;
  const times = soleReader(b, div.node.outputs[0]);
  const scale = constantOperand(b, times?.node, 'Mul', div.node.outputs[0]);
  if (!times || !scale) return undefined;
  const absorbed = [sub.k, square.k, variance.k, plusEps.k, sqrt.k, div.k, times.k];
  const plus = soleReader(b, times.node.outputs[0]);
  const bias = constantOperand(b, plus?.node, 'Add', times.node.outputs[0]);
  if (!plus || !bias || featureCount(b, bias) === undefined) return { x, output: times.node.outputs[0], epsilon: epsilon[0], scale, absorbed };
  return { x, output: plus.node.outputs[0], epsilon: epsilon[0], scale, bias, absorbed: [...absorbed, plus.k] };
}

/** ReduceMean: the first node of a decomposed layer norm, or cut. */
export const reduceMean: Op = (b, n, k) => {
  const m = matchDecomposed(b, k);
  const problem = m && affineProblem(b, m.x, m.scale, m.bias);
  if (!m || problem) return b.cut(k, `ONNX op ReduceMean ${problem ? `starting a layer norm ${problem}` : 'outside a decomposed layer norm (ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div, Mul, Add) is not rescaled'}: its inputs keep scale 1`);
  m.absorbed.forEach((j) => b.absorbed.add(j));
  addLayerNorm(b, k, m.x, m.output, m.epsilon, m.scale, m.bias);
};
