/**
 * The one owner of weighted-layer geometry: for each weighted kind and weight layout, how the flat
 * weight array is laid out over kernel taps, input channels and output units.
 *
 * A kernel has the logical axes
 *   tap   ky*kw + kx (kh*kw of them; dense has none)
 *   in    input channel, cin of them
 *   out   output unit, cout of them                          (dense, conv2d)
 *   mult  depthwise multiplier m: output unit c*M + m of input channel c, so the units
 *         are the run (in, mult) and M = cout / cin          (depthwise-conv2d)
 * and a layout is the order of those axes in the flat array (row-major, outermost first). The rest
 * is derived from that order: the unit of a flat element, the [outer, axis, inner] views the plan
 * compiler writes (per output unit) and reads (per input channel), the kernel in the default layout.
 *
 * A new weighted kind: list it in WEIGHTED_KINDS and WEIGHT_LAYOUTS (layers.ts) and give it an entry
 * in KINDS below; the type checker then points at every switch over kinds that must handle it.
 */
import { describeValue } from '../describe.js';
import { ENormError } from '../errors.js';
import {
  WEIGHT_LAYOUTS,
  type ConvLayout, type ConvTransposeLayout, type DenseLayout, type DepthwiseLayout, type FlattenOrder, type LayoutOf,
  type WeightedKind, type WeightedLayer,
} from './layers.js';

export type KernelAxis = 'tap' | 'in' | 'mult' | 'out';
/** A kernel's sizes in layout-neutral order (dense: kh = kw = 1). */
export interface KernelDims { kh: number; kw: number; cin: number; cout: number }
/** Activation layout of feature maps: tfjs is NHWC, PyTorch / ONNX NCHW. */
export type ActivationLayout = 'nhwc' | 'nchw';
/** A tensor seen as [outer, axis, inner]: element (o, a, i) at (o*axis + a)*inner + i. */
export interface AxisLayout { outer: number; axis: number; inner: number }

interface LayoutGeometry {
  /** The axes of the flat weight, outermost first. */
  axes: readonly KernelAxis[];
  /** The sizes, from a validated shape; `inputChannels` only where the shape does not fix cin. */
  dims(s: readonly number[], inputChannels: number | null): KernelDims;
  /** The shape of a kernel of sizes `d` (the inverse of `dims`). */
  shape(d: KernelDims): number[];
  /** false when cin is not in the shape but is the input's channel count (depthwise 'oihw'). */
  fixesInputs: boolean;
  /** The activation layout of the format this weight layout comes from. */
  activations: ActivationLayout;
  /** What is wrong with a shape of the right rank and positive dimensions, if anything. */
  shapeProblem?(s: readonly number[]): string | undefined;
}

interface KindGeometry<L extends string> {
  /** Rank of `shape`. */
  rank: number;
  /** Reads and writes feature maps, and its layout fixes the network's activation layout; false: feature vectors. */
  spatial: boolean;
  /** The axes whose joint row-major index is the output unit. */
  units: readonly KernelAxis[];
  layouts: Record<L, LayoutGeometry>;
}

const DENSE = {
  io: { axes: ['in', 'out'], dims: ([cin, cout]) => ({ kh: 1, kw: 1, cin, cout }), shape: (d) => [d.cin, d.cout], fixesInputs: true, activations: 'nhwc' },
  oi: { axes: ['out', 'in'], dims: ([cout, cin]) => ({ kh: 1, kw: 1, cin, cout }), shape: (d) => [d.cout, d.cin], fixesInputs: true, activations: 'nchw' },
} satisfies Record<DenseLayout, LayoutGeometry>;

const CONV = {
  hwio: { axes: ['tap', 'in', 'out'], dims: ([kh, kw, cin, cout]) => ({ kh, kw, cin, cout }), shape: (d) => [d.kh, d.kw, d.cin, d.cout], fixesInputs: true, activations: 'nhwc' },
  oihw: { axes: ['out', 'in', 'tap'], dims: ([cout, cin, kh, kw]) => ({ kh, kw, cin, cout }), shape: (d) => [d.cout, d.cin, d.kh, d.kw], fixesInputs: true, activations: 'nchw' },
} satisfies Record<ConvLayout, LayoutGeometry>;

const DEPTHWISE = {
  hwcm: {
    axes: ['tap', 'in', 'mult'], dims: ([kh, kw, c, m]) => ({ kh, kw, cin: c, cout: c * m }), shape: (d) => [d.kh, d.kw, d.cin, d.cout / d.cin],
    fixesInputs: true, activations: 'nhwc',
  },
  oihw: {
    // [C*M, 1, kh, kw]: the channel count is the input's (multiplier 1 when it is unknown).
    axes: ['in', 'mult', 'tap'], dims: ([cm, , kh, kw], c) => ({ kh, kw, cin: c ?? cm, cout: cm }), shape: (d) => [d.cout, 1, d.kh, d.kw],
    fixesInputs: false, activations: 'nchw',
    shapeProblem: (s) => (s[1] === 1 ? undefined : `an 'oihw' depthwise kernel is [channels*multiplier, 1, kh, kw]; dimension 1 is ${s[1]}`),
  },
} satisfies Record<DepthwiseLayout, LayoutGeometry>;

/** The transpose of a conv: its units are the `out` channels it writes, its inputs the `in` channels it reads. */
const CONV_TRANSPOSE = {
  hwoi: { axes: ['tap', 'out', 'in'], dims: ([kh, kw, cout, cin]) => ({ kh, kw, cin, cout }), shape: (d) => [d.kh, d.kw, d.cout, d.cin], fixesInputs: true, activations: 'nhwc' },
  iohw: { axes: ['in', 'out', 'tap'], dims: ([cin, cout, kh, kw]) => ({ kh, kw, cin, cout }), shape: (d) => [d.cin, d.cout, d.kh, d.kw], fixesInputs: true, activations: 'nchw' },
} satisfies Record<ConvTransposeLayout, LayoutGeometry>;

const KINDS = {
  dense: { rank: 2, spatial: false, units: ['out'], layouts: DENSE },
  conv2d: { rank: 4, spatial: true, units: ['out'], layouts: CONV },
  'depthwise-conv2d': { rank: 4, spatial: true, units: ['in', 'mult'], layouts: DEPTHWISE },
  'conv2d-transpose': { rank: 4, spatial: true, units: ['out'], layouts: CONV_TRANSPOSE },
} satisfies { [K in WeightedKind]: KindGeometry<LayoutOf<K>> };

/** Every layout of every weighted kind. */
export type WeightLayout = LayoutOf<WeightedKind>;

export const defaultLayout = <K extends WeightedKind>(kind: K): LayoutOf<K> => WEIGHT_LAYOUTS[kind][0];
export const kernelRank = (kind: WeightedKind): number => KINDS[kind].rank;
export const isSpatial = (kind: WeightedKind): boolean => KINDS[kind].spatial;

/** The layer's layout: its own, or its kind's default. Not checked (see layoutProblem). */
export function layoutOf(layer: WeightedLayer): WeightLayout {
  return layer.layout ?? defaultLayout(layer.kind);
}

function layoutsOf(kind: WeightedKind): Readonly<Record<string, LayoutGeometry>> {
  return KINDS[kind].layouts;
}

/** Why the layer's layout is not one of its kind's, or undefined when it is. */
export function layoutProblem(layer: WeightedLayer): string | undefined {
  const layout: unknown = layoutOf(layer);
  if (typeof layout === 'string' && Object.hasOwn(layoutsOf(layer.kind), layout)) return undefined;
  return `layout '${describeValue(layout)}' is not one of ${WEIGHT_LAYOUTS[layer.kind].join(', ')}`;
}

/** The layout's entry; E_LAYOUT for a layout of another kind (validation reports it first, with the layer's index). */
function geometry(layer: WeightedLayer): LayoutGeometry {
  const problem = layoutProblem(layer);
  if (problem !== undefined) throw new ENormError('E_LAYOUT', `${layer.kind} ${problem}`, layer.name === undefined ? {} : { layer: layer.name });
  return layoutsOf(layer.kind)[layoutOf(layer)];
}

/** What is wrong with the layer's shape beyond its rank and positivity (depthwise 'oihw': dimension 1). */
export function shapeProblem(layer: WeightedLayer): string | undefined {
  return geometry(layer).shapeProblem?.(layer.shape);
}

/** Whether the shape fixes the input channel count (false: it is the input's, depthwise 'oihw'). */
export const fixesInputs = (layer: WeightedLayer): boolean => geometry(layer).fixesInputs;

/** The layout's activation layout (tfjs NHWC or PyTorch NCHW); only spatial kinds impose it on the network. */
export const activationsOf = (layer: WeightedLayer): ActivationLayout => geometry(layer).activations;

/** The activation layout of a kind's layout, e.g. 'nchw' for conv2d 'oihw'. */
export function layoutActivations<K extends WeightedKind>(kind: K, layout: LayoutOf<K>): ActivationLayout {
  return layoutsOf(kind)[layout].activations;
}

/** The kind's layout of the given activation convention: 'oi' for a dense head on NCHW maps. */
export function matchingLayout<K extends WeightedKind>(kind: K, activations: ActivationLayout): LayoutOf<K> {
  const layouts = layoutsOf(kind);
  return WEIGHT_LAYOUTS[kind].find((l) => layouts[l].activations === activations) ?? defaultLayout(kind);
}

/** The flatten order that matches an activation layout: NHWC maps flatten as (h, w, c). */
export const flattenOrderFor = (activations: ActivationLayout): FlattenOrder => (activations === 'nhwc' ? 'channels-last' : 'channels-first');

/** The kernel's sizes (shape validated); `inputChannels` is used only where the shape does not fix cin. */
export function kernelDims(layer: WeightedLayer, inputChannels: number | null = null): KernelDims {
  return geometry(layer).dims(layer.shape, inputChannels);
}

/** The shape of a kind's kernel of sizes `d` in `layout`. */
export function kernelShape<K extends WeightedKind>(kind: K, layout: LayoutOf<K>, d: KernelDims): number[] {
  return layoutsOf(kind)[layout].shape(d);
}

/** Number of output units (= bias length) of a weighted layer. */
export const outputUnits = (layer: WeightedLayer): number => kernelDims(layer).cout;

/** A conv2d's `groups` (unchecked; validation checks it), 1 for every other kind. */
export const groupsOf = (layer: WeightedLayer): number => (layer.kind === 'conv2d' ? layer.groups ?? 1 : 1);

/**
 * Number of input channels: groups x the kernel's `in` axis (each group reads its own cin channels);
 * the input's own count where the shape does not fix it.
 */
export const inputUnits = (layer: WeightedLayer, inputChannels: number | null = null): number => kernelDims(layer, inputChannels).cin * groupsOf(layer);

type ViewAxis = KernelAxis | 'pos';

function axisSizes(d: KernelDims): Record<KernelAxis, number> {
  return { tap: d.kh * d.kw, in: d.cin, mult: d.cout / d.cin, out: d.cout };
}

/** `axes` seen around the contiguous run `run`: outer = product of the sizes before it, axis = of the run, inner = after it. */
function around(axes: readonly ViewAxis[], sizes: Record<ViewAxis, number>, run: readonly ViewAxis[]): AxisLayout {
  const first = axes.indexOf(run[0]);
  const view = { outer: 1, axis: 1, inner: 1 };
  axes.forEach((a, i) => {
    if (i < first) view.outer *= sizes[a];
    else if (i < first + run.length) view.axis *= sizes[a];
    else view.inner *= sizes[a];
  });
  return view;
}

/** The weight as [outer, units, inner]: unit u owns elements (o*units + u)*inner + i. */
export function writeView(layer: WeightedLayer, d: KernelDims): AxisLayout {
  return around(geometry(layer).axes, { ...axisSizes(d), pos: 1 }, KINDS[layer.kind].units);
}

/** Input rows of a dense layer behind a Flatten: `positions` rows per channel, interleaved per `order`. */
export interface FlattenedInput { positions: number; order: FlattenOrder }

/**
 * The weight as [outer, input channels, inner]: channel c owns elements (o*C + c)*inner + i. Behind a
 * Flatten, the input axis splits into (position, channel) for 'channels-last' and (channel, position)
 * for 'channels-first', so a channel's rows are strided, and C = cin / positions.
 */
export function readView(layer: WeightedLayer, d: KernelDims, flat: FlattenedInput = { positions: 1, order: 'channels-last' }): AxisLayout {
  const split: ViewAxis[] = flat.order === 'channels-last' ? ['pos', 'in'] : ['in', 'pos'];
  const axes = geometry(layer).axes.flatMap((a): ViewAxis[] => (a === 'in' ? split : [a]));
  return around(axes, { ...axisSizes(d), in: d.cin / flat.positions, pos: flat.positions }, ['in']);
}

/**
 * Input channels [channel, channel + count) of a kernel as one strided block: channel + i owns the
 * elements start + o*outerStride + i*inner + j (0 <= o < outer, 0 <= j < inner): the plan's View.
 */
export interface ReadBlock { channel: number; count: number; start: number; outer: number; outerStride: number; inner: number }

/**
 * The weight as reader blocks per input channel (its outgoing weights). groups = 1: the read view
 * as one block. A grouped conv2d: input channel g*cpg + i (cpg = the kernel's `in` axis) reads only
 * its group's outputs o = g*opg + l (opg = cout / groups), so the elements of group g are
 *   g*opg*s_out + i*s_in + t*s_tap + l*s_out,
 * s the row-major strides of the layout. The stride-1 axis (tap in 'oihw', out in 'hwio') is the
 * run j, the other the outer axis. When the run fills the channel stride ('oihw') the group is one
 * block of cpg channels; otherwise ('hwio': the run is opg of cout) one block per channel.
 * `flat`: a dense layer behind a Flatten (readView); dense layers are never grouped.
 */
export function readBlocks(layer: WeightedLayer, d: KernelDims, flat?: FlattenedInput): ReadBlock[] {
  const groups = groupsOf(layer);
  if (groups === 1) {
    const t = readView(layer, d, flat);
    return [{ channel: 0, count: t.axis, start: 0, outer: t.outer, outerStride: t.axis * t.inner, inner: t.inner }];
  }
  const sizes = axisSizes(d);
  const s = strides(geometry(layer).axes, sizes);
  const opg = d.cout / groups;
  const tapRuns = s.tap === 1;
  const run = tapRuns ? sizes.tap : opg;
  const across = tapRuns ? { outer: opg, outerStride: s.out } : { outer: sizes.tap, outerStride: s.tap };
  const perChannel = run !== s.in;
  const blocks: ReadBlock[] = [];
  for (let g = 0; g < groups; g++) {
    const start = g * opg * s.out;
    if (!perChannel) blocks.push({ channel: g * d.cin, count: d.cin, start, ...across, inner: run });
    else for (let i = 0; i < d.cin; i++) blocks.push({ channel: g * d.cin + i, count: 1, start: start + i * s.in, ...across, inner: run });
  }
  return blocks;
}

/** Row-major strides of `axes` (outermost first) of the given sizes. */
function strides(axes: readonly KernelAxis[], sizes: Record<KernelAxis, number>): Record<KernelAxis, number> {
  const out = { tap: 0, in: 0, mult: 0, out: 0 };
  let stride = 1;
  for (let i = axes.length - 1; i >= 0; i--) {
    out[axes[i]] = stride;
    stride *= sizes[axes[i]];
  }
  return out;
}

/** One element per unit: a bias, gamma or beta. */
export const vectorView = (units: number): AxisLayout => ({ outer: 1, axis: units, inner: 1 });

/** The output unit of flat weight element x: floor(x / inner) mod units of the write view. */
export function outputUnitOf(layer: WeightedLayer): (x: number) => number {
  const { axis, inner } = writeView(layer, kernelDims(layer));
  return (x) => Math.floor(x / inner) % axis;
}

/**
 * The weight in its kind's default layout (dense [in, out], conv [kh, kw, in, out], depthwise
 * [kh, kw, C, M], conv-transpose [kh, kw, out, in]) as float64: element (a0, a1, ...) of the layer's axes moves to the same axis
 * indices in the default order. A copy when the layout already is the default.
 */
export function toDefaultLayout(layer: WeightedLayer, d: KernelDims): Float64Array {
  const from = geometry(layer).axes;
  const to = layoutsOf(layer.kind)[defaultLayout(layer.kind)].axes;
  return from === to ? Float64Array.from(layer.weight) : permute(layer.weight, from, to, axisSizes(d));
}

/** Reorders a row-major array over `from` into row-major over `to` (the same axes, another order). */
function permute(src: ArrayLike<number>, from: readonly KernelAxis[], to: readonly KernelAxis[], sizes: Record<KernelAxis, number>): Float64Array {
  const strideIn = new Map<KernelAxis, number>();
  let s = 1;
  for (let i = to.length - 1; i >= 0; i--) {
    strideIn.set(to[i], s);
    s *= sizes[to[i]];
  }
  const extent = from.map((a) => sizes[a]);
  const stride = from.map((a) => strideIn.get(a) as number);
  const index = from.map(() => 0);
  const out = new Float64Array(src.length);
  let t = 0;
  for (let x = 0; x < src.length; x++) {
    out[t] = src[x];
    // Odometer over the source axes, innermost first; t follows in the target's strides.
    for (let a = from.length - 1; a >= 0; a--) {
      t += stride[a];
      if (++index[a] < extent[a]) break;
      t -= stride[a] * extent[a];
      index[a] = 0;
    }
  }
  return out;
}
