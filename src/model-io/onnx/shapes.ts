/**
 * What the op mapping knows of each tensor's shape: its rank and, per axis, the size where the file
 * or the ops fix it (null where it is left open, as a dynamic batch). Propagated in topological
 * order from the graph inputs and the constants through the ops whose output shape follows from
 * their operands; any other op's outputs stay unknown. Ops that only make sense on a known rank
 * (LayerNormalization on [N, F], PRelu's per-channel slope) ask here and are cut where it is unknown.
 */
import { attr } from './attributes.js';
import type { GraphFacts } from './graph.js';
import { readValues } from './tensors.js';
import type { WireGraph, WireNode } from './wire.js';

export type Dims = (number | null)[];

/** Ops whose output has their first input's shape. */
const SAME_SHAPE = new Set([
  'Relu', 'LeakyRelu', 'PRelu', 'Clip', 'Dropout', 'Identity', 'Sigmoid', 'Tanh', 'Softmax', 'Elu', 'Selu', 'Softplus', 'Gelu',
  'HardSigmoid', 'HardSwish', 'Sqrt', 'Abs', 'Neg', 'Exp', 'Log', 'Erf', 'BatchNormalization', 'LayerNormalization',
]);
/** Elementwise ops with multidirectional broadcasting. */
const BROADCAST = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Sum', 'Max', 'Min']);
/** Ops that keep the rank (NCHW in, NCHW out) but may change every size. */
const SAME_RANK = new Set(['Conv', 'ConvTranspose', 'MaxPool', 'AveragePool', 'GlobalAveragePool', 'GlobalMaxPool', 'Concat']);

/** Multidirectional broadcast (numpy rules, aligned on the last axis); undefined if a rank is unknown. */
function broadcast(all: (Dims | undefined)[]): Dims | undefined {
  if (all.some((d) => d === undefined)) return undefined;
  const known = all as Dims[];
  const rank = Math.max(0, ...known.map((d) => d.length));
  return Array.from({ length: rank }, (_, i) => {
    const sizes = known.map((d) => d[d.length - rank + i]).filter((s) => s !== undefined);
    const fixed = sizes.find((s) => s !== null && s !== 1);
    if (fixed !== undefined) return fixed;
    return sizes.every((s) => s === 1) ? 1 : null;
  });
}

function constantValues(name: string, bytes: Uint8Array, facts: GraphFacts): number[] | undefined {
  const c = facts.constants.get(name);
  return c?.values ?? (c?.tensor ? readValues(bytes, c.tensor) : undefined);
}

/** A reduction of `x` over `axes` (none: all), the reduced axes kept as 1 or dropped. */
function reduced(x: Dims, axes: number[] | undefined, keep: boolean): Dims | undefined {
  const all = axes === undefined || axes.length === 0;
  const picked = new Set(all ? x.map((_, i) => i) : axes.map((a) => (a < 0 ? a + x.length : a)));
  if ([...picked].some((a) => !(a >= 0 && a < x.length))) return undefined;
  return keep ? x.map((d, i) => (picked.has(i) ? 1 : d)) : x.filter((_, i) => !picked.has(i));
}

/** The output shape of node `n` from its inputs' shapes (`of`), or undefined. */
function outputDims(n: WireNode, of: (name: string) => Dims | undefined, bytes: Uint8Array, facts: GraphFacts): Dims | undefined {
  const x = of(n.inputs[0] ?? '');
  const w = of(n.inputs[1] ?? '');
  if (SAME_SHAPE.has(n.opType)) return x;
  if (BROADCAST.has(n.opType)) return broadcast(n.inputs.filter((t) => t !== '').map(of));
  if (SAME_RANK.has(n.opType)) return x && x.map(() => null);
  switch (n.opType) {
    case 'Gemm': {
      const transB = (attr(n, 'transB')?.i ?? 0) === 1;
      return [null, w && w.length === 2 ? w[transB ? 0 : 1] : null];
    }
    case 'MatMul':
      return x && x.length >= 2 && w && w.length === 2 ? [...x.slice(0, -1), w[1]] : undefined;
    case 'ReduceMean':
      return x && reduced(x, attr(n, 'axes')?.ints ?? (n.inputs[1] ? constantValues(n.inputs[1], bytes, facts) : undefined), (attr(n, 'keepdims')?.i ?? 1) === 1);
    case 'Flatten':
      return [null, null];
    case 'Reshape':
      return constantValues(n.inputs[1] ?? '', bytes, facts)?.map((s) => (s > 0 ? s : null));
  }
  return undefined;
}

/** The shape of every tensor the graph lets one infer (see the header). */
export function tensorDims(g: WireGraph, facts: GraphFacts, bytes: Uint8Array): Map<string, Dims> {
  const dims = new Map<string, Dims>();
  for (const v of g.inputs) if (v.dims && !facts.constants.has(v.name)) dims.set(v.name, v.dims);
  for (const [name, c] of facts.constants) {
    if (c.tensor) dims.set(name, c.tensor.dims);
    else if (c.values) dims.set(name, c.values.length === 1 ? [] : [c.values.length]);
  }
  for (const k of facts.order) {
    const n = g.nodes[k];
    const out = n.outputs[0];
    if (!out || dims.has(out) || (n.domain !== '' && n.domain !== 'ai.onnx')) continue;
    const d = outputDims(n, (name) => dims.get(name), bytes, facts);
    if (d) dims.set(out, d);
  }
  return dims;
}
