import { ENormError } from '../errors.js';
import { NETWORK_INPUT, resolveGraph } from '../network/graph.js';
import type { FlattenOrder, Layer, TensorRole } from '../network/layers.js';
import { companionList, outputUnits, type WeightedLayer } from '../network/validate.js';
import type { Barrier, Group, Plan, TensorSlot, View, WriterView } from './ir.js';

export type ResidualMode = 'complete' | 'blocks';

export interface CompileOptions {
  /** Count |bias|^p (and |beta|^p) in the unit's incoming cost and in the energy. */
  includeBiases: boolean;
  /** 'complete': every residual stream is one group; 'blocks': only units inside blocks are balanced. */
  residual: ResidualMode;
}

/** A tensor seen as [outer, axis, inner]; the units of a group are a range of the middle axis. */
interface AxisLayout { outer: number; axis: number; inner: number }

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
  const fail = (k: number, code: ENormError['code'], msg: string): never => {
    throw new ENormError(code, `layer '${names[k]}' (${net[k].kind}): ${msg}`, { layerIndex: k, layer: names[k] });
  };
  const whole = (group: GroupDraft | null, count: number): Segment[] => [{ group, unitStart: 0, count }];
  const viewOf = (tensor: number, t: AxisLayout, from: number, s: Segment): View => ({
    tensor, start: from * t.inner, outer: t.outer, outerStride: t.axis * t.inner, count: s.count, inner: t.inner, unitStart: s.unitStart,
  });
  /** Registers `tensor` (seen as `t`, input channels on the middle axis) as outgoing weights of every group feeding it. */
  const addReaders = (tensor: number, t: AxisLayout, input: Value) => {
    let from = 0;
    for (const s of input.segments) {
      if (s.group) s.group.readers.push(viewOf(tensor, t, from, s)); // re-homed to the root at the end
      from += s.count;
    }
  };
  /** The layer's own output units: a fresh group written by `weights` (in cost) and `extras` (biases: cost by option). */
  const produce = (k: number, units: number, weight: { tensor: number; t: AxisLayout } | null, extras: number[]): Value => {
    const g = newGroup(k, units);
    const all: Segment = { group: g, unitStart: 0, count: units };
    if (weight) g.writers.push({ ...viewOf(weight.tensor, weight.t, 0, all), inCost: true });
    for (const e of extras) g.writers.push({ ...viewOf(e, { outer: 1, axis: units, inner: 1 }, 0, all), inCost: tensors[e].cost });
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
    barriers.push({ layer: names[k], reason: `layer '${names[k]}' is frozen (${reason}): its tensors are not rescaled, and the units it reads and writes keep scale 1` });
    return { channels: units, segments: whole(g, units), spatial: null, flattened: null };
  };
  /** A dense or convolution layer: kernel read per input channel (`read`), written per output unit (`write`), plus its bias. */
  const weighted = (k: number, layer: WeightedLayer, input: Value, units: number, read: AxisLayout, write: AxisLayout): Value => {
    if (layer.frozen !== undefined) return frozenLayer(k, layer.frozen, input, units);
    const w = slot(k, 'weight', layer.weight, companionList(layer.companions?.weight));
    addReaders(w, read, input);
    const b = layer.bias ? [slot(k, 'bias', layer.bias, companionList(layer.companions?.bias))] : [];
    return produce(k, units, { tensor: w, t: write }, b);
  };
  const checkChannels = (k: number, input: Value, expected: number, what: string) => {
    if (input.channels !== null && input.channels !== expected) {
      fail(k, 'E_WIDTH', `${what} is ${expected} but its input '${inputName(k)}' has ${input.channels}`);
    }
  };
  const inputName = (k: number) => graph.inputs[k].map((j) => (j === NETWORK_INPUT ? 'input' : names[j])).join(', ');

  net.forEach((layer, k) => {
    const ins = graph.inputs[k].map((j) => (j === NETWORK_INPUT ? unknownInput : values[j]));
    const input = ins[0];
    const noFlatten = () => {
      if (input?.flattened) fail(k, 'E_GRAPH', `reads the output of a Flatten; only dense layers can follow Flatten`);
    };
    let out: Value;
    switch (layer.kind) {
      case 'input':
        out = { channels: null, segments: [], spatial: null, flattened: null };
        break;
      case 'dense': {
        const io = (layer.layout ?? 'io') === 'io';
        const [nIn, nOut] = io ? layer.shape : [layer.shape[1], layer.shape[0]];
        if (input.spatial === true && !input.flattened) {
          fail(k, 'E_GRAPH', `reads the feature map of '${inputName(k)}'; put a flatten or global pooling layer before it`);
        }
        // Input rows grouped per channel: a Flatten spreads channel c over `positions` rows.
        let positions = 1;
        if (input.flattened && input.channels !== null) {
          positions = nIn / input.channels;
          if (!Number.isInteger(positions)) {
            fail(k, 'E_WIDTH', `input width ${nIn} is not a multiple of the ${input.channels} channels flattened by '${inputName(k)}'`);
          }
        } else {
          checkChannels(k, input, nIn, 'input width');
        }
        const channels = input.channels ?? nIn;
        const channelsLast = input.flattened !== 'channels-first';
        const readT: AxisLayout = io
          ? (channelsLast ? { outer: positions, axis: channels, inner: nOut } : { outer: 1, axis: channels, inner: positions * nOut })
          : (channelsLast ? { outer: nOut * positions, axis: channels, inner: 1 } : { outer: nOut, axis: channels, inner: positions });
        out = weighted(k, layer, input, nOut, readT, io ? { outer: nIn, axis: nOut, inner: 1 } : { outer: 1, axis: nOut, inner: nIn });
        out.spatial = false;
        break;
      }
      case 'conv2d': {
        noFlatten();
        const hwio = (layer.layout ?? 'hwio') === 'hwio';
        const s = layer.shape;
        const [kh, kw, nIn, nOut] = hwio ? s : [s[2], s[3], s[1], s[0]];
        checkChannels(k, input, nIn, 'input channels');
        const taps = kh * kw;
        out = weighted(k, layer, input, nOut,
          hwio ? { outer: taps, axis: nIn, inner: nOut } : { outer: nOut, axis: nIn, inner: taps },
          hwio ? { outer: taps * nIn, axis: nOut, inner: 1 } : { outer: 1, axis: nOut, inner: nIn * taps });
        out.spatial = true;
        break;
      }
      case 'depthwise-conv2d': {
        noFlatten();
        const hwcm = (layer.layout ?? 'hwcm') === 'hwcm';
        const s = layer.shape;
        const units = outputUnits(layer);
        const taps = hwcm ? s[0] * s[1] : s[2] * s[3];
        let channels: number;
        if (hwcm) {
          channels = s[2];
          checkChannels(k, input, channels, 'input channels');
        } else {
          channels = input.channels ?? units;
          if (units % channels !== 0) fail(k, 'E_WIDTH', `${units} output channels are not a multiple of the ${channels} input channels`);
        }
        const multiplier = units / channels;
        out = weighted(k, layer, input, units,
          hwcm ? { outer: taps, axis: channels, inner: multiplier } : { outer: 1, axis: channels, inner: multiplier * taps },
          hwcm ? { outer: taps, axis: units, inner: 1 } : { outer: 1, axis: units, inner: taps });
        out.spatial = true;
        break;
      }
      case 'batch-norm': {
        noFlatten();
        const n = layer.mean.length;
        checkChannels(k, input, n, 'channel count');
        // BN cancels any scale on its input: the producer's units keep scale 1.
        pin(input);
        if (layer.frozen !== undefined) {
          out = { ...frozenLayer(k, layer.frozen, input, n), spatial: input.spatial };
          break;
        }
        const gamma = layer.gamma ? slot(k, 'gamma', layer.gamma, companionList(layer.companions?.gamma)) : -1;
        const beta = layer.beta ? slot(k, 'beta', layer.beta, companionList(layer.companions?.beta)) : -1;
        if (gamma < 0) {
          const g = newGroup(k, n);
          g.pinned = true;
          barriers.push({ layer: names[k], reason: 'batch norm without gamma (scale=false): its channels cannot carry a scale' });
          out = { channels: n, segments: whole(g, n), spatial: input.spatial, flattened: null };
        } else {
          out = produce(k, n, null, beta >= 0 ? [gamma, beta] : [gamma]);
          out.spatial = input.spatial;
        }
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
        pin(input, graph.consumers[k].length === 0 ? undefined : { layer: names[k], reason: `activation '${layer.fn}' is not positively homogeneous: the units of '${inputName(k)}' keep scale 1` });
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
        throw new ENormError('E_LAYER_KIND', `layer '${names[k]}': unsupported kind '${(layer as Layer).kind}'`, { layerIndex: k, layer: names[k] });
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
      fail(k, 'E_WIDTH', `inputs ${graph.inputs[k].map((j, i) => `'${j === NETWORK_INPUT ? 'input' : names[j]}' (${widths[i]})`).join(', ')} have different channel counts`);
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
