/**
 * The shape pass of the float64 forward evaluator: per-example shapes through every layer,
 * with every check the kernels rely on (layouts, tensor lengths, widths, windows), and the
 * work and memory one example costs. It allocates nothing proportional to the activations,
 * so a model that declares a 10^9-wide input is rejected (or costed) before anything is
 * allocated for it.
 *
 * Shapes are per example, internal layout: a map is [h, w, c] (NHWC), a vector [features].
 */
import { ENormError, layerError, safeName, type LayerAt } from '../errors.js';
import { inputUnits, kernelDims, kernelRank, layoutProblem, shapeProblem, type ActivationLayout, type KernelDims } from './geometry.js';
import { NETWORK_INPUT, resolveGraph, type ResolvedGraph } from './graph.js';
import { BARRIER_ACTIVATIONS, layerName, type Layer, type Network, type WeightedLayer } from './layers.js';
import { unknownKind } from './validate.js';

export interface ForwardShapes {
  layout: ActivationLayout;
  /** Per layer: its output shape per example (internal layout); input layers hold their bound shape. */
  shapes: number[][];
  /** Per network input (the 'input' layers in order, or the implicit input): its shape in the network's layout. */
  inputShapes: number[][];
  /**
   * Work per example: multiply-adds of dense / conv layers (every kernel tap that lands inside the
   * input, bounded above), one per window element for pools, one per value for elementwise layers.
   */
  workPerExample: number;
  /** Most float64 values the evaluator holds at once per example (live activations plus the copies it returns). */
  peakValuesPerExample: number;
  /** Float64 values of all network outputs together, per example. */
  outputValuesPerExample: number;
}

/** Where a check is: the layer's index and display name (messages read "layer 'name': ...", without the kind). */
type At = LayerAt;

export interface Window { oh: number; ow: number; sh: number; sw: number; padTop: number; padLeft: number }

/** Output size and padding of a sliding window, with TF semantics for 'same'. */
export function window2d(h: number, w: number, kh: number, kw: number, strides: number | [number, number] | undefined, padding: string | undefined, at: At): Window {
  const [sh, sw] = pair(strides ?? 1, at, 'strides');
  const pad = padding ?? 'valid';
  if (pad === 'same') {
    const oh = Math.ceil(h / sh);
    const ow = Math.ceil(w / sw);
    const padTop = Math.floor(Math.max((oh - 1) * sh + kh - h, 0) / 2);
    const padLeft = Math.floor(Math.max((ow - 1) * sw + kw - w, 0) / 2);
    return { oh, ow, sh, sw, padTop, padLeft };
  }
  if (pad !== 'valid') throw layerError('E_SHAPE', at, `padding must be 'valid' or 'same', got '${String(pad)}'`);
  if (h < kh || w < kw) {
    throw layerError('E_WIDTH', at, `its ${kh}x${kw} window does not fit the ${h}x${w} input with 'valid' padding`);
  }
  return { oh: Math.floor((h - kh) / sh) + 1, ow: Math.floor((w - kw) / sw) + 1, sh, sw, padTop: 0, padLeft: 0 };
}

/**
 * Output size and padding of a transposed convolution (the adjoint of conv2d's window): input pixel iy
 * lands on output rows iy*sh + ky - padTop. 'valid': (h-1)*sh + kh, no padding (ONNX ConvTranspose with
 * pads 0); 'same': h*sh, padTop = floor(max(kh - sh, 0) / 2), the padding of the conv2d that maps the
 * output back to the input (TF conv2d_transpose; ONNX auto_pad SAME_UPPER).
 */
export function transposeWindow(h: number, w: number, kh: number, kw: number, strides: number | [number, number] | undefined, padding: string | undefined, at: At): Window {
  const [sh, sw] = pair(strides ?? 1, at, 'strides');
  const pad = padding ?? 'valid';
  if (pad === 'same') {
    return { oh: h * sh, ow: w * sw, sh, sw, padTop: Math.floor(Math.max(kh - sh, 0) / 2), padLeft: Math.floor(Math.max(kw - sw, 0) / 2) };
  }
  if (pad !== 'valid') throw layerError('E_SHAPE', at, `padding must be 'valid' or 'same', got '${String(pad)}'`);
  return { oh: (h - 1) * sh + kh, ow: (w - 1) * sw + kw, sh, sw, padTop: 0, padLeft: 0 };
}

export function pair(v: number | [number, number], at: At, what: string): [number, number] {
  const p: number[] = typeof v === 'number' ? [v, v] : Array.isArray(v) ? v : [];
  if (p.length !== 2 || p.some((d) => !Number.isSafeInteger(d) || d < 1)) {
    throw layerError('E_SHAPE', at, `${what} must be a positive integer or a pair of them, got ${show(v)}`);
  }
  return [p[0], p[1]];
}

/** A short rendering of a user value: no recursion on its nesting, no unbounded length. */
export function show(v: unknown): string {
  if (Array.isArray(v)) return v.length <= 8 && v.every((d) => typeof d === 'number') ? `[${v.join(',')}]` : `an array of ${v.length}`;
  if (typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined) return String(v);
  return typeof v;
}

export const prod = (s: readonly number[]): number => {
  let n = 1;
  for (const d of s) n *= d;
  return n;
};

function checkShape(shape: unknown, rank: number, at: At, what: string): number[] {
  if (!Array.isArray(shape) || shape.length !== rank || shape.some((d) => !Number.isSafeInteger(d) || d < 1)) {
    throw layerError('E_SHAPE', at, `${what} must be ${rank} positive integers, got ${show(shape)}`);
  }
  return shape;
}

function checkLength(a: ArrayLike<number> | undefined, n: number, at: At, tensor: string): void {
  if (a === undefined || a === null || a.length !== n) {
    throw layerError('E_SHAPE', at, `${tensor} should hold ${n} values, has ${a?.length ?? 'none'}`, { tensor });
  }
}

function mapShape(x: number[], at: At, kind: string): [number, number, number] {
  if (x.length !== 3) {
    throw layerError('E_WIDTH', at, `${kind} needs an image map but receives a [${x.join(', ')}] tensor (give the input a 3-D shape)`);
  }
  return [x[0], x[1], x[2]];
}

/** Kernel taps of a window that can land inside an h x w input: at most kh*kw, at most h*w. */
const taps = (kh: number, kw: number, h: number, w: number): number => Math.min(kh, h) * Math.min(kw, w);

const isBarrierActivation = (fn: unknown): boolean => (BARRIER_ACTIVATIONS as readonly unknown[]).includes(fn);

/** What every kernel checks (layout, shape, tensor lengths); its sizes, cin the input's where the shape leaves it open. */
function kernel(layer: WeightedLayer, at: At, inputChannels: number | null): KernelDims {
  const badLayout = layoutProblem(layer);
  if (badLayout !== undefined) throw layerError('E_LAYOUT', at, `${layer.kind} ${badLayout}`);
  const s = checkShape(layer.shape, kernelRank(layer.kind), at, `${layer.kind} shape`);
  const badShape = shapeProblem(layer);
  if (badShape !== undefined) throw layerError('E_SHAPE', at, badShape);
  const d = kernelDims(layer, inputChannels);
  checkLength(layer.weight, prod(s), at, 'weight');
  if (layer.bias !== undefined) checkLength(layer.bias, d.cout, at, 'bias');
  return d;
}

/** The output shape of one layer and its work per example; throws what its kernel would. */
function layerShape(layer: Layer, ins: number[][], at: At): { shape: number[]; work: number } {
  const [x] = ins;
  switch (layer.kind) {
    case 'dense': {
      const { cin: nIn, cout: nOut } = kernel(layer, at, null);
      if (x.length !== 1) throw layerError('E_WIDTH', at, `dense reads a [${x.join(', ')}] map; put a flatten (or a global pool) before it`);
      if (x[0] !== nIn) throw layerError('E_WIDTH', at, `dense expects ${nIn} input features but receives ${x[0]}`);
      return { shape: [nOut], work: nIn * nOut };
    }
    case 'conv2d': {
      // cin: the channels one output reads (its group's); the input has groups x cin.
      const { kh, kw, cin, cout } = kernel(layer, at, null);
      const [h, w, c] = mapShape(x, at, 'conv2d');
      const channels = inputUnits(layer);
      if (c !== channels) throw layerError('E_WIDTH', at, `conv2d expects ${channels} input channels but receives ${c}`);
      const g = window2d(h, w, kh, kw, layer.strides, layer.padding, at);
      return { shape: [g.oh, g.ow, cout], work: g.oh * g.ow * (taps(kh, kw, h, w) * cin * cout + cout) };
    }
    case 'depthwise-conv2d': {
      const { kh, kw, cin, cout } = kernel(layer, at, x.length === 3 ? x[2] : null);
      if (cout % cin !== 0) throw layerError('E_WIDTH', at, `depthwise kernel has ${cout} output channels, not a multiple of its ${cin} input channels`);
      const [h, w, c] = mapShape(x, at, 'depthwise-conv2d');
      if (c !== cin) throw layerError('E_WIDTH', at, `depthwise-conv2d expects ${cin} input channels but receives ${c}`);
      const g = window2d(h, w, kh, kw, layer.strides, layer.padding, at);
      return { shape: [g.oh, g.ow, cout], work: g.oh * g.ow * (taps(kh, kw, h, w) + 1) * cout };
    }
    case 'conv2d-transpose': {
      const { kh, kw, cin, cout } = kernel(layer, at, null);
      const [h, w, c] = mapShape(x, at, 'conv2d-transpose');
      if (c !== cin) throw layerError('E_WIDTH', at, `conv2d-transpose expects ${cin} input channels but receives ${c}`);
      const g = transposeWindow(h, w, kh, kw, layer.strides, layer.padding, at);
      // Every input pixel meets every tap (some land in the cropped padding), then the bias per output value.
      return { shape: [g.oh, g.ow, cout], work: h * w * kh * kw * cin * cout + g.oh * g.ow * cout };
    }
    case 'batch-norm': {
      const n = layer.mean?.length;
      checkLength(layer.mean, n, at, 'mean');
      checkLength(layer.variance, n, at, 'variance');
      if (layer.gamma !== undefined) checkLength(layer.gamma, n, at, 'gamma');
      if (layer.beta !== undefined) checkLength(layer.beta, n, at, 'beta');
      const c = x[x.length - 1];
      if (c !== n) throw layerError('E_WIDTH', at, `batch-norm has ${n} channels but receives ${c}`);
      return { shape: x, work: prod(x) };
    }
    case 'layer-norm': {
      const c = x[x.length - 1];
      if (layer.gamma !== undefined) checkLength(layer.gamma, c, at, 'gamma');
      if (layer.beta !== undefined) checkLength(layer.beta, c, at, 'beta');
      return { shape: x, work: 3 * prod(x) };
    }
    case 'leaky-relu':
      if (typeof layer.alpha === 'object') checkLength(layer.alpha, x[x.length - 1], at, 'alpha');
      return { shape: x, work: prod(x) };
    case 'activation':
      if (!isBarrierActivation(layer.fn)) throw layerError('E_LAYER_KIND', at, `unknown activation '${String(layer.fn)}'`);
      return { shape: x, work: prod(x) };
    case 'max-pool':
    case 'avg-pool': {
      const [ph, pw] = pair(layer.size, at, 'size');
      const [h, w, c] = mapShape(x, at, layer.kind);
      const g = window2d(h, w, ph, pw, layer.strides ?? layer.size, layer.padding, at);
      return { shape: [g.oh, g.ow, c], work: g.oh * g.ow * (taps(ph, pw, h, w) + 1) * c };
    }
    case 'global-avg-pool':
    case 'global-max-pool': {
      const [, , c] = mapShape(x, at, layer.kind);
      return { shape: [c], work: prod(x) };
    }
    case 'flatten': {
      const order = layer.order ?? 'channels-last';
      if (order !== 'channels-last' && order !== 'channels-first') {
        throw layerError('E_LAYOUT', at, `unknown flatten order '${String(order)}' (use 'channels-last' or 'channels-first')`);
      }
      return { shape: [prod(x)], work: prod(x) };
    }
    case 'add':
      ins.forEach((t, i) => {
        if (!sameShape(t, x)) {
          throw layerError('E_WIDTH', at, `add needs inputs of one shape, but input 0 is [${x.join(', ')}] and input ${i} is [${t.join(', ')}]`);
        }
      });
      return { shape: x, work: ins.length * prod(x) };
    case 'concat': {
      const lead = x.slice(0, -1);
      let total = 0;
      ins.forEach((t, i) => {
        if (t.length !== x.length || !sameShape(t.slice(0, -1), lead)) {
          throw layerError('E_WIDTH', at,
            `concat joins along the channel / feature axis, so all but that axis must match, but input 0 is [${x.join(', ')}] and input ${i} is [${t.join(', ')}]`);
        }
        total += t[t.length - 1];
      });
      const shape = [...lead, total];
      return { shape, work: prod(shape) };
    }
    case 'relu':
    case 'identity':
    case 'dropout':
      return { shape: x, work: prod(x) };
    case 'input':
      return { shape: x, work: 0 }; // bound before the pass: never reached
    default:
      return unknownKind(layer, at);
  }
}

const sameShape = (a: number[], b: number[]): boolean => a.length === b.length && a.every((d, i) => d === b[i]);

/**
 * Shapes, work and memory of evaluating `net` on inputs of `inputShapes` (default: the input
 * layers' `shape`, or for an implicit input the width of the first dense layer it reaches).
 * Checks everything the kernels check, in layer order, and throws the same ENormError.
 */
export function forwardShapes(net: Network, layout: ActivationLayout, inputShapes?: number[][], graph: ResolvedGraph = resolveGraph(net)): ForwardShapes {
  const inputLayers: number[] = [];
  net.forEach((l, k) => { if (l.kind === 'input') inputLayers.push(k); });
  const inputCount = inputLayers.length > 0 ? inputLayers.length : 1;
  if (inputShapes !== undefined && inputShapes.length !== inputCount) {
    throw new ENormError('E_OPTION', `forward: inputShapes gives ${inputShapes.length} shape(s) for ${inputCount} network input(s)`);
  }
  const bound: number[][] = [];
  const internal = (i: number, k: number): number[] => {
    const declared = inputShapes?.[i] ?? (k === NETWORK_INPUT ? undefined : (net[k] as { shape?: number[] }).shape);
    const name = k === NETWORK_INPUT ? 'the network input' : `input '${safeName(graph.names[k])}'`;
    const shape = declared ?? inferVectorShape(net, graph.consumers, k, name);
    if (!Array.isArray(shape) || shape.length === 0 || shape.length > 8 || shape.some((d) => !Number.isSafeInteger(d) || d < 1)) {
      throw new ENormError('E_SHAPE', `${name}: shape must be a non-empty list of positive integers, got ${show(shape)}`,
        k === NETWORK_INPUT ? {} : { layerIndex: k, layer: graph.names[k] });
    }
    bound.push([...shape]);
    // NCHW maps are evaluated as NHWC.
    return layout === 'nchw' && shape.length === 3 ? [shape[1], shape[2], shape[0]] : [...shape];
  };

  const shapes: number[][] = net.map(() => []);
  const implicit = inputLayers.length === 0 ? internal(0, NETWORK_INPUT) : undefined;
  inputLayers.forEach((k, i) => { shapes[k] = internal(i, k); });

  // Liveness as forward() runs: a layer's output lives until its last reader has run.
  const pending = graph.consumers.map((c) => c.length);
  let live = 0;
  for (const s of bound) live += prod(s) * 2; // the bound copy, and its NHWC conversion
  let peak = live;
  let work = live;
  net.forEach((layer, k) => {
    if (layer.kind === 'input') return;
    const ins = graph.inputs[k].map((j) => (j === NETWORK_INPUT ? implicit : shapes[j]) as number[]);
    const out = layerShape(layer, ins, { layerIndex: k, layer: graph.names[k] });
    shapes[k] = out.shape;
    work += out.work;
    live += prod(out.shape);
    peak = Math.max(peak, live);
    for (const j of graph.inputs[k]) if (j !== NETWORK_INPUT && --pending[j] === 0) live -= prod(shapes[j]);
  });
  let outputs = 0;
  for (const k of graph.outputs) outputs += prod(shapes[k]);
  return { layout, shapes, inputShapes: bound, workPerExample: work, peakValuesPerExample: peak + outputs, outputValuesPerExample: outputs };
}

/** An input without a declared shape is a flat vector as wide as the first dense layer it reaches. */
function inferVectorShape(net: Network, consumers: number[][], k: number, name: string): number[] {
  const reached = new Uint8Array(net.length);
  const frontier = k === NETWORK_INPUT ? [0] : consumers[k].slice();
  while (frontier.length > 0) {
    const j = frontier.pop() as number;
    if (reached[j]) continue;
    reached[j] = 1;
    for (const c of consumers[j]) frontier.push(c);
  }
  const first = net.findIndex((l, j) => reached[j] === 1 && l.kind === 'dense');
  if (first < 0) {
    throw new ENormError('E_SHAPE', `${name} has no shape and feeds no dense layer to take one from: give options.inputShapes`);
  }
  const d = net[first] as Layer & { kind: 'dense' };
  return [kernel(d, { layerIndex: first, layer: layerName(d, first) }, null).cin];
}
