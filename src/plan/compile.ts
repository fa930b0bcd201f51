import { layerError, safeName, type LayerAt } from '../errors.js';
import { fixesInputs, inputUnits, kernelDims, readBlocks, vectorView, writeView, type AxisLayout, type KernelDims, type ReadBlock } from '../network/geometry.js';
import { NETWORK_INPUT, resolveGraph } from '../network/graph.js';
import type { FlattenOrder, Layer, TensorRole, WeightedLayer } from '../network/layers.js';
import { companionList, unknownKind } from '../network/validate.js';
import type { Barrier, Group, Plan, TensorSlot, View, WriterView } from './ir.js';

export type ResidualMode = 'complete' | 'blocks';

export interface CompileOptions {
  /** Count |bias|^p (and |beta|^p) in the unit's incoming cost and in the energy. */
  includeBiases: boolean;
  /** 'complete': every residual stream is one group; 'blocks': only units inside blocks are balanced. */
  residual: ResidualMode;
}

/** Scale sharing under construction; merged by residual Add (union-find). */
interface GroupDraft {
  id: number;
  size: number;
  parent: GroupDraft;
  writers: WriterView[];
  readers: View[];
  layers: string[];
  pinned: boolean;
}

/** `count` consecutive channels carrying units [unitStart, unitStart+count) of `group` (null: fixed scale 1). */
interface Segment { group: GroupDraft | null; unitStart: number; count: number }

/** What flows along an edge, as far as scales are concerned. */
interface Value {
  /** null when the channel count is unknown (the network input). */
  channels: number | null;
  segments: Segment[];
  /** true: a feature map; false: a feature vector; null: unknown. */
  spatial: boolean | null;
  /** Set by Flatten on a feature map: how the vector interleaves channels and positions. */
  flattened: FlattenOrder | null;
}

function root(g: GroupDraft): GroupDraft {
  while (g.parent !== g) g = g.parent = g.parent.parent;
  return g;
}

/**
 * Compiles a validated network into a Plan: its tensors, and its groups of units that share one
 * scale, in Gauss-Seidel (topological) order. Read-only: nothing is rescaled here.
 */
export function compilePlan(net: readonly Layer[], options: CompileOptions): Plan {
  const graph = resolveGraph(net);
  const { names } = graph;
  const tensors: TensorSlot[] = [];
  const drafts: GroupDraft[] = [];
  const barriers: Barrier[] = [];
  const values: Value[] = new Array(net.length);
  const unknownInput: Value = { channels: null, segments: [], spatial: null, flattened: null };

  const slot = (k: number, role: TensorRole, data: Float32Array, companions: Float32Array[]): number => {
    const cost = role === 'weight' || role === 'gamma' || options.includeBiases;
    tensors.push({ id: tensors.length, layerIndex: k, layer: names[k], role, data, cost, companions });
    return tensors.length - 1;
  };
  const newGroup = (k: number, size: number): GroupDraft => {
    const g = { id: drafts.length, size, writers: [], readers: [], layers: [names[k]], pinned: false } as unknown as GroupDraft;
    g.parent = g;
    drafts.push(g);
    return g;
  };
  const pin = (v: Value, barrier?: Barrier) => {
    let any = false;
    for (const s of v.segments) if (s.group && !root(s.group).pinned) { root(s.group).pinned = true; any = true; }
    if (any && barrier) barriers.push(barrier);
  };
  /** Where layer k is, for its errors. */
  const at = (k: number): LayerAt => ({ layerIndex: k, layer: names[k], kind: net[k].kind });
  const whole = (group: GroupDraft | null, count: number): Segment[] => [{ group, unitStart: 0, count }];
  /** Units [from, from + count) of the middle axis of `tensor` seen as `t`, carrying units unitStart... of a group. */
  const viewOf = (tensor: number, t: AxisLayout, from: number, s: Segment): View => ({
    tensor, start: from * t.inner, outer: t.outer, outerStride: t.axis * t.inner, count: s.count, inner: t.inner, unitStart: s.unitStart,
  });
  /**
   * Registers `tensor` (its input channels as geometry's reader blocks) as outgoing weights of every
   * group feeding it: each segment's channels [from, from + count) meet each block's, and the overlap
   * is one view (a plain kernel: one block, so one view per segment).
   */
  const addReaders = (tensor: number, blocks: readonly ReadBlock[], input: Value) => {
    let from = 0;
    for (const s of input.segments) {
      if (s.group) for (const b of blocks) overlap(tensor, b, from, s); // re-homed to the root at the end
      from += s.count;
    }
  };
  const overlap = (tensor: number, b: ReadBlock, from: number, s: Segment) => {
    const lo = Math.max(from, b.channel);
    const hi = Math.min(from + s.count, b.channel + b.count);
    if (lo >= hi) return;
    (s.group as GroupDraft).readers.push({
      tensor, start: b.start + (lo - b.channel) * b.inner, outer: b.outer, outerStride: b.outerStride, count: hi - lo, inner: b.inner, unitStart: s.unitStart + lo - from,
    });
  };
  /** The layer's own output units: a fresh group written by `weights` (in cost) and `extras` (biases: cost by option). */
  const produce = (k: number, units: number, weight: { tensor: number; t: AxisLayout } | null, extras: number[]): Value => {
    const g = newGroup(k, units);
    const all: Segment = { group: g, unitStart: 0, count: units };
    if (weight) g.writers.push({ ...viewOf(weight.tensor, weight.t, 0, all), inCost: true });
    for (const e of extras) g.writers.push({ ...viewOf(e, vectorView(units), 0, all), inCost: tensors[e].cost });
    return { channels: units, segments: whole(g, units), spatial: null, flattened: null };
  };
  /**
   * A frozen layer (docs/ALGORITHM.md section 7, "Ownership"): none of its tensors joins the plan, the groups
   * it reads keep scale 1 (their scale would be undone in its kernel), and so do its output units
   * (their scale would land on its kernel, bias, gamma or beta); pinned, not fixed, so that a
   * residual stream it writes is pinned as a whole when an add merges it.
   */
  const frozenLayer = (k: number, reason: string, input: Value, units: number): Value => {
    pin(input);
    const g = newGroup(k, units);
    g.pinned = true;
    barriers.push({ layer: names[k], reason: `layer '${safeName(names[k])}' is frozen (${reason}): its tensors are not rescaled, and the units it reads and writes keep scale 1` });
    return { channels: units, segments: whole(g, units), spatial: null, flattened: null };
  };
  /**
   * A norm's output units y_i = gamma_i * xhat_i + beta_i: a group written by gamma (in cost) and beta,
   * as a kernel's by its weight and bias; pinned without gamma (nothing can carry the scale).
   */
  const affineNorm = (k: number, layer: Extract<Layer, { kind: 'batch-norm' | 'layer-norm' }>, input: Value, n: number, noGamma: string): Value => {
    if (layer.frozen !== undefined) return { ...frozenLayer(k, layer.frozen, input, n), spatial: input.spatial };
    const gamma = layer.gamma ? slot(k, 'gamma', layer.gamma, companionList(layer.companions?.gamma)) : -1;
    const beta = layer.beta ? [slot(k, 'beta', layer.beta, companionList(layer.companions?.beta))] : [];
    if (gamma < 0) {
      const g = newGroup(k, n);
      g.pinned = true;
      barriers.push({ layer: names[k], reason: `${noGamma}: its channels cannot carry a scale` });
      return { channels: n, segments: whole(g, n), spatial: input.spatial, flattened: null };
    }
    return { ...produce(k, n, null, [gamma, ...beta]), spatial: input.spatial };
  };
  /** A weighted layer: its kernel read per input channel (`read`), written per output unit (geometry's write view), plus its bias. */
  const weighted = (k: number, layer: WeightedLayer, input: Value, d: KernelDims, read: readonly ReadBlock[]): Value => {
    if (layer.frozen !== undefined) return frozenLayer(k, layer.frozen, input, d.cout);
    const w = slot(k, 'weight', layer.weight, companionList(layer.companions?.weight));
    addReaders(w, read, input);
    const b = layer.bias ? [slot(k, 'bias', layer.bias, companionList(layer.companions?.bias))] : [];
    return produce(k, d.cout, { tensor: w, t: writeView(layer, d) }, b);
  };
  /** A convolution: its input channels are the shape's (checked against the input) or, where the shape leaves them open, the input's. */
  const convolution = (k: number, layer: Extract<WeightedLayer, { kind: 'conv2d' | 'depthwise-conv2d' | 'conv2d-transpose' }>, input: Value): Value => {
    const d = kernelDims(layer, input.channels);
    if (fixesInputs(layer)) checkChannels(k, input, inputUnits(layer), 'input channels');
    else if (d.cout % d.cin !== 0) throw layerError('E_WIDTH', at(k), `${d.cout} output channels are not a multiple of the ${d.cin} input channels`);
    return { ...weighted(k, layer, input, d, readBlocks(layer, d)), spatial: true };
  };
  const checkChannels = (k: number, input: Value, expected: number, what: string) => {
    if (input.channels !== null && input.channels !== expected) {
      throw layerError('E_WIDTH', at(k), `${what} is ${expected} but its input '${inputName(k)}' has ${input.channels}`);
    }
  };
  const inputName = (k: number) => graph.inputs[k].map((j) => (j === NETWORK_INPUT ? 'input' : safeName(names[j]))).join(', ');

  net.forEach((layer, k) => {
    const ins = graph.inputs[k].map((j) => (j === NETWORK_INPUT ? unknownInput : values[j]));
    const input = ins[0];
    const noFlatten = () => {
      if (input?.flattened) throw layerError('E_GRAPH', at(k), `reads the output of a Flatten; only dense layers can follow Flatten`);
    };
    let out: Value;
    switch (layer.kind) {
      case 'input':
        out = { channels: null, segments: [], spatial: null, flattened: null };
        break;
      case 'dense': {
        const d = kernelDims(layer);
        const nIn = d.cin;
        if (input.spatial === true && !input.flattened) {
          throw layerError('E_GRAPH', at(k), `reads the feature map of '${inputName(k)}'; put a flatten or global pooling layer before it`);
        }
        // Input rows grouped per channel: a Flatten spreads channel c over `positions` rows.
        let positions = 1;
        if (input.flattened && input.channels !== null) {
          positions = nIn / input.channels;
          if (!Number.isInteger(positions)) {
            throw layerError('E_WIDTH', at(k), `input width ${nIn} is not a multiple of the ${input.channels} channels flattened by '${inputName(k)}'`);
          }
        } else {
          checkChannels(k, input, nIn, 'input width');
        }
        const order = input.flattened ?? 'channels-last';
        out = { ...weighted(k, layer, input, d, readBlocks(layer, d, { positions, order })), spatial: false };
        break;
      }
      case 'conv2d':
      case 'depthwise-conv2d':
      case 'conv2d-transpose': // like conv2d: its weight writes the `out` units and reads the `in` channels
        noFlatten();
        out = convolution(k, layer, input);
        break;
      case 'batch-norm':
        noFlatten();
        checkChannels(k, input, layer.mean.length, 'channel count');
        // BN cancels any scale on its input: the producer's units keep scale 1.
        pin(input);
        out = affineNorm(k, layer, input, layer.mean.length, 'batch norm without gamma (scale=false)');
        break;
      case 'layer-norm': {
        // Behind a Flatten its features are the map's values, not its channels: a vector of new units.
        const n = layer.gamma?.length ?? layer.beta?.length ?? (input.flattened ? null : input.channels);
        if (n !== null && !input.flattened) checkChannels(k, input, n, 'feature count');
        // LN cancels only a uniform scale on its input (one per example): per-unit scales would change it.
        pin(input, { layer: names[k], reason: `layer norm cancels only a uniform input scale: the units of '${inputName(k)}' keep scale 1` });
        const normed = n === null ? unknownInput : affineNorm(k, layer, input, n, 'layer norm without gamma');
        out = { ...normed, spatial: input.flattened ? false : input.spatial };
        break;
      }
      case 'relu':
      case 'leaky-relu':
      case 'identity':
      case 'dropout':
        out = input;
        break;
      case 'max-pool':
      case 'avg-pool':
        noFlatten();
        out = { ...input, spatial: true };
        break;
      case 'global-avg-pool':
      case 'global-max-pool':
        noFlatten();
        out = { ...input, spatial: false };
        break;
      case 'flatten':
        out = input.spatial === false || input.flattened ? input : { ...input, flattened: layer.order ?? 'channels-last' };
        break;
      case 'activation':
        // On an output layer it changes nothing: output units are never rescaled.
        pin(input, graph.consumers[k].length === 0 ? undefined : { layer: names[k], reason: `activation '${safeName(layer.fn)}' is not positively homogeneous: the units of '${inputName(k)}' keep scale 1` });
        out = { channels: input.channels, segments: input.channels === null ? [] : whole(null, input.channels), spatial: input.spatial, flattened: input.flattened };
        break;
      case 'concat': {
        // A flattened map interleaves channels with positions: its channels keep scale 1 past a concat.
        if (ins.some((v) => v.flattened)) {
          ins.forEach((v, i) => pin(v, i === 0 ? { layer: names[k], reason: 'concat of a flattened map: the channels feeding it keep scale 1' } : undefined));
          out = { channels: null, segments: [], spatial: false, flattened: null };
          break;
        }
        const known = ins.every((v) => v.channels !== null);
        out = {
          channels: known ? ins.reduce((a, v) => a + (v.channels as number), 0) : null,
          segments: known ? ins.flatMap((v) => v.segments) : [],
          spatial: ins[0].spatial,
          flattened: null,
        };
        if (!known) ins.forEach((v) => pin(v));
        break;
      }
      case 'add':
        out = mergeResidual(k, ins);
        break;
      default:
        unknownKind(layer, { layerIndex: k, layer: names[k] });
    }
    values[k] = out;
  });

  /** y = x1 + x2 + ...: every channel's scale must be the same in all inputs. */
  function mergeResidual(k: number, ins: Value[]): Value {
    if (ins.some((v) => v.flattened)) {
      ins.forEach((v, i) => pin(v, i === 0 ? { layer: names[k], reason: 'add of a flattened map: the channels feeding it keep scale 1' } : undefined));
      return { channels: null, segments: [], spatial: false, flattened: null };
    }
    const widths = ins.map((v) => v.channels);
    const known = widths.filter((w): w is number => w !== null);
    if (known.some((w) => w !== known[0])) {
      throw layerError('E_WIDTH', at(k), `inputs ${graph.inputs[k].map((j, i) => `'${j === NETWORK_INPUT ? 'input' : safeName(names[j])}' (${widths[i]})`).join(', ')} have different channel counts`);
    }
    const spatial = ins.find((v) => v.spatial !== null)?.spatial ?? null;
    const channels = known.length ? known[0] : null;
    const fixed = (reason: string): Value => {
      ins.forEach((v, i) => pin(v, i === 0 ? { layer: names[k], reason } : undefined));
      return { channels, segments: channels === null ? [] : whole(null, channels), spatial, flattened: null };
    };
    if (options.residual === 'blocks') return fixed(`residual mode 'blocks': the stream through this add keeps scale 1`);
    const groups = ins.map((v) => (v.segments.length === 1 && v.segments[0].group && v.segments[0].unitStart === 0 && v.segments[0].count === root(v.segments[0].group).size ? root(v.segments[0].group) : null));
    if (groups.some((g) => g === null) || channels === null) {
      return fixed('an input of this add has channels with a fixed scale (the network input, a barrier, or a concat): the whole stream keeps scale 1');
    }
    const r = groups[0] as GroupDraft;
    for (const g of groups.slice(1) as GroupDraft[]) {
      if (g === r) continue;
      g.parent = r;
      r.pinned = r.pinned || g.pinned;
      r.id = Math.min(r.id, g.id);
    }
    return { channels, segments: whole(r, channels), spatial, flattened: null };
  }

  for (const k of graph.outputs) pin(values[k]);

  // Re-home views on union roots; keep groups that can move (not pinned, with readers).
  const roots = new Map<GroupDraft, Group>();
  for (const d of drafts) {
    const r = root(d);
    if (r.pinned) continue;
    let g = roots.get(r);
    if (!g) {
      g = { id: r.id, name: '', size: r.size, writers: [], readers: [], layers: [] };
      roots.set(r, g);
    }
    // Loops, not push(...spread): a stream merged from 130,000+ layers would overflow the call stack.
    for (const w of d.writers) g.writers.push(w);
    for (const r of d.readers) g.readers.push(r);
    for (const l of d.layers) g.layers.push(l);
  }
  const groups = [...roots.values()]
    .filter((g) => g.readers.length > 0 && g.writers.some((w) => w.inCost))
    .sort((a, b) => a.id - b.id)
    .map((g, id) => ({ ...g, id, name: g.layers.length === 1 ? g.layers[0] : `stream(${g.layers.join('+')})` }));
  return { tensors, groups, barriers };
}
