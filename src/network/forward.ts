/**
 * A plain float64 forward evaluator for every layer kind.
 *
 * It exists to check that rescaling preserves the network's function (tests, and the CLI's
 * "largest output deviation" report), so it knows nothing about rescaling and favours
 * obviously-correct loops over speed.
 *
 * Internally every activation map is NHWC ([batch, h, w, c]) and every kernel is converted to
 * HWIO / HWCM / HWOI, whatever the network's own layout; inputs and outputs are converted at the edges.
 * Feature vectors are [batch, features]. A map's per-example shape is [h, w, c] internally.
 *
 * Every shape is worked out and checked first, by the shape pass (forward-shapes.ts), before any
 * activation is allocated; the kernels (here, and the map kernels in forward-maps.ts) then trust
 * their shapes.
 */
import { ENormError, layerError, safeName } from '../errors.js';
import { ELEMENTWISE, softmax, type Tensor } from './forward-activations.js';
import { conv2d, conv2dTranspose, depthwiseConv2d, globalPool, pool, type KernelCtx } from './forward-maps.js';
import { forwardShapes, prod } from './forward-shapes.js';
import { activationsOf, isSpatial, kernelDims, layoutProblem, toDefaultLayout, type ActivationLayout } from './geometry.js';
import { NETWORK_INPUT, resolveGraph } from './graph.js';
import {
  isWeighted,
  type ActivationLayer, type BatchNormLayer, type DenseLayer, type FlattenLayer, type Layer, type LayerKind,
  type LayerNormLayer, type LeakyReluLayer, type Network,
} from './layers.js';

export type { ActivationLayout } from './geometry.js';

export interface ForwardOptions {
  /** Number of examples in every input array (example-major). */
  batch: number;
  /**
   * Per-example shape of each network input, overriding the 'input' layers' `shape`:
   * [features], or a map in the network's layout ([h, w, c] for NHWC, [c, h, w] for NCHW).
   */
  inputShapes?: number[][];
}

type Kernel<K extends LayerKind> = (layer: Layer & { kind: K }, ins: Tensor[], ctx: KernelCtx) => Tensor;

/** A Map, so that a layer kind such as 'constructor' finds no kernel. */
const KERNELS = new Map<LayerKind, Kernel<LayerKind>>(Object.entries({
  dense,
  conv2d,
  'depthwise-conv2d': depthwiseConv2d,
  'conv2d-transpose': conv2dTranspose,
  'batch-norm': batchNorm,
  'layer-norm': layerNorm,
  relu: (_l, [x]) => map(x, (v) => (v < 0 ? 0 : v)),
  'leaky-relu': leakyRelu,
  identity: (_l, [x]) => x,
  activation,
  'max-pool': pool,
  'avg-pool': pool,
  'global-avg-pool': (_l, [x], ctx) => globalPool(x, ctx, false),
  'global-max-pool': (_l, [x], ctx) => globalPool(x, ctx, true),
  dropout: (_l, [x]) => x,
  flatten,
  add,
  concat,
} satisfies { [K in Exclude<LayerKind, 'input'>]: Kernel<K> }) as [LayerKind, Kernel<LayerKind>][]);

/**
 * Runs the network on `batch` examples per input and returns one Float64Array per network output
 * (the layers nothing reads, in layer order), example-major, in the output's natural layout:
 * a map as NHWC or NCHW (the network's layout), a vector as [batch, features].
 * Shapes are checked through the whole network before anything is allocated.
 */
export function forward(net: Network, inputs: ArrayLike<number>[], options: ForwardOptions): Float64Array[] {
  const graph = resolveGraph(net);
  const batch = options?.batch;
  if (!Number.isSafeInteger(batch) || batch < 1) {
    throw new ENormError('E_OPTION', `forward: batch must be a positive integer, got ${String(batch)}`);
  }
  const layout = networkLayout(net, graph.names);

  // The network inputs: the 'input' layers in layer order, or one implicit input.
  const inputLayers: number[] = [];
  net.forEach((l, k) => { if (l.kind === 'input') inputLayers.push(k); });
  const inputCount = inputLayers.length > 0 ? inputLayers.length : 1;
  if (!Array.isArray(inputs) || inputs.length !== inputCount) {
    throw new ENormError('E_OPTION', `forward: the network has ${inputCount} input(s), got ${Array.isArray(inputs) ? inputs.length : 'no array'}`);
  }
  const plan = forwardShapes(net, layout, options.inputShapes, graph);
  const bound = (i: number, k: number): Tensor => {
    const name = k === NETWORK_INPUT ? 'the network input' : `input '${safeName(graph.names[k])}'`;
    return bindInput(inputs[i], plan.inputShapes[i], batch, layout, name, k);
  };
  const values: (Tensor | undefined)[] = net.map(() => undefined);
  const implicit = inputLayers.length === 0 ? bound(0, NETWORK_INPUT) : undefined;
  inputLayers.forEach((k, i) => { values[k] = bound(i, k); });

  // Remaining readers per layer, so intermediate maps can be released early.
  const pending = graph.consumers.map((c) => c.length);
  net.forEach((layer, k) => {
    if (layer.kind === 'input') return;
    const kernel = KERNELS.get(layer.kind) as Kernel<LayerKind>; // the shape pass rejected unknown kinds
    const ins = graph.inputs[k].map((j) => (j === NETWORK_INPUT ? implicit : values[j]) as Tensor);
    values[k] = kernel(layer, ins, { batch, layerIndex: k, layer: graph.names[k], out: plan.shapes[k] });
    for (const j of graph.inputs[k]) {
      if (j !== NETWORK_INPUT && --pending[j] === 0) values[j] = undefined;
    }
  });

  return graph.outputs.map((k) => {
    const t = values[k] as Tensor;
    return layout === 'nchw' && t.shape.length === 3 ? nhwcToNchw(t, batch) : t.data.slice();
  });
}

/** The activation layout implied by the network's convolution layouts (geometry.ts; 'nhwc' when it has none). */
export function networkLayout(net: Network, names: string[] = net.map((l, k) => l.name ?? `#${k}`)): ActivationLayout {
  let found: { layout: ActivationLayout; k: number } | undefined;
  net.forEach((layer, k) => {
    if (!isWeighted(layer) || !isSpatial(layer.kind)) return;
    const at = { layerIndex: k, layer: names[k] };
    const problem = layoutProblem(layer);
    if (problem !== undefined) throw layerError('E_LAYOUT', at, `${layer.kind} ${problem}`);
    const l = activationsOf(layer);
    if (found === undefined) found = { layout: l, k };
    else if (found.layout !== l) {
      throw layerError('E_LAYOUT', at,
        `its kernel layout implies ${l.toUpperCase()} activations but layer '${safeName(names[found.k])}' implies ${found.layout.toUpperCase()}; one network must use one convolution layout`);
    }
  });
  return found?.layout ?? 'nhwc';
}

// ---------------------------------------------------------------------------------------------
// Inputs and outputs

/** Copies one input (already shape-checked) into float64, NHWC; checks only its length. */
function bindInput(raw: ArrayLike<number>, shape: number[], batch: number, layout: ActivationLayout, name: string, k: number): Tensor {
  const where = k === NETWORK_INPUT ? {} : { layerIndex: k, layer: name };
  const size = prod(shape);
  if (raw === null || typeof raw !== 'object' || raw.length !== batch * size) {
    throw new ENormError('E_SHAPE', `${name}: expected ${batch} x [${shape.join(', ')}] = ${batch * size} values, got ${raw?.length}`, where);
  }
  const data = Float64Array.from(raw);
  if (layout === 'nchw' && shape.length === 3) {
    const [c, h, w] = shape;
    return { data: nchwToNhwc(data, batch, c, h, w), shape: [h, w, c] };
  }
  return { data, shape: [...shape] };
}

function nchwToNhwc(src: Float64Array, batch: number, c: number, h: number, w: number): Float64Array {
  const out = new Float64Array(src.length);
  const hw = h * w;
  for (let b = 0; b < batch; b++) {
    const base = b * c * hw;
    for (let ch = 0; ch < c; ch++) {
      for (let p = 0; p < hw; p++) out[base + p * c + ch] = src[base + ch * hw + p];
    }
  }
  return out;
}

function nhwcToNchw(t: Tensor, batch: number): Float64Array {
  const [h, w, c] = t.shape;
  const out = new Float64Array(t.data.length);
  const hw = h * w;
  for (let b = 0; b < batch; b++) {
    const base = b * c * hw;
    for (let p = 0; p < hw; p++) {
      for (let ch = 0; ch < c; ch++) out[base + ch * hw + p] = t.data[base + p * c + ch];
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Layer kernels (shapes, lengths and widths were checked by the shape pass)

function dense(layer: DenseLayer, [x]: Tensor[], ctx: KernelCtx): Tensor {
  const d = kernelDims(layer);
  const { cin: nIn, cout: nOut } = d;
  // Weights as [in, out] (the default layout) so the inner loop runs over contiguous outputs.
  const w = toDefaultLayout(layer, d);
  const out = new Float64Array(ctx.batch * nOut);
  for (let b = 0; b < ctx.batch; b++) {
    const o = b * nOut;
    if (layer.bias !== undefined) for (let j = 0; j < nOut; j++) out[o + j] = layer.bias[j];
    for (let i = 0; i < nIn; i++) {
      const xv = x.data[b * nIn + i];
      if (xv === 0) continue;
      const wi = i * nOut;
      for (let j = 0; j < nOut; j++) out[o + j] += xv * w[wi + j];
    }
  }
  return { data: out, shape: [nOut] };
}

function batchNorm(layer: BatchNormLayer, [x]: Tensor[]): Tensor {
  const n = layer.mean.length;
  const eps = layer.epsilon ?? 1e-3;
  const scale = new Float64Array(n);
  const shift = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    scale[i] = (layer.gamma?.[i] ?? 1) / Math.sqrt(layer.variance[i] + eps);
    shift[i] = (layer.beta?.[i] ?? 0) - layer.mean[i] * scale[i];
  }
  const out = new Float64Array(x.data.length);
  for (let i = 0; i < out.length; i++) {
    const ch = i % n;
    out[i] = x.data[i] * scale[ch] + shift[ch];
  }
  return { data: out, shape: x.shape };
}

/**
 * Per row of n features (a vector, or a map's channels at one position):
 * y_i = gamma_i * (x_i - mean) / sqrt(var + epsilon) + beta_i, var the population variance.
 */
function layerNorm(layer: LayerNormLayer, [x]: Tensor[]): Tensor {
  const n = x.shape[x.shape.length - 1];
  const eps = layer.epsilon ?? 1e-3;
  const out = new Float64Array(x.data.length);
  for (let r = 0; r < out.length; r += n) {
    let mean = 0;
    for (let i = 0; i < n; i++) mean += x.data[r + i];
    mean /= n;
    let variance = 0;
    for (let i = 0; i < n; i++) variance += (x.data[r + i] - mean) ** 2;
    const inv = 1 / Math.sqrt(variance / n + eps);
    for (let i = 0; i < n; i++) out[r + i] = (layer.gamma?.[i] ?? 1) * (x.data[r + i] - mean) * inv + (layer.beta?.[i] ?? 0);
  }
  return { data: out, shape: x.shape };
}

/** x for x >= 0, alpha x below: one slope, or one per channel (the last axis; the shape pass checked its length). */
function leakyRelu(layer: LeakyReluLayer, [x]: Tensor[]): Tensor {
  const alpha = layer.alpha ?? 0.3;
  if (typeof alpha === 'number') return map(x, (v) => (v < 0 ? alpha * v : v));
  const n = alpha.length;
  const out = new Float64Array(x.data.length);
  for (let i = 0; i < out.length; i++) {
    const v = x.data[i];
    out[i] = v < 0 ? alpha[i % n] * v : v;
  }
  return { data: out, shape: x.shape };
}

function activation(layer: ActivationLayer, [x]: Tensor[], ctx: KernelCtx): Tensor {
  if (layer.fn === 'softmax') return softmax(x);
  // The shape pass accepted only known functions; Object.hasOwn keeps 'constructor' out all the same.
  if (!Object.hasOwn(ELEMENTWISE, layer.fn)) throw layerError('E_LAYER_KIND', ctx, `unknown activation '${String(layer.fn)}'`);
  return map(x, ELEMENTWISE[layer.fn]);
}

function flatten(layer: FlattenLayer, [x]: Tensor[], ctx: KernelCtx): Tensor {
  const size = prod(x.shape);
  if (x.shape.length !== 3 || (layer.order ?? 'channels-last') === 'channels-last') return { data: x.data, shape: [size] };
  return { data: nhwcToNchw(x, ctx.batch), shape: [size] }; // (h, w, c) -> (c, h, w)
}

function add(_layer: Layer, ins: Tensor[]): Tensor {
  const [first] = ins;
  const out = Float64Array.from(first.data);
  for (let t = 1; t < ins.length; t++) {
    const d = ins[t].data;
    for (let i = 0; i < out.length; i++) out[i] += d[i];
  }
  return { data: out, shape: first.shape };
}

function concat(_layer: Layer, ins: Tensor[], ctx: KernelCtx): Tensor {
  const [first] = ins;
  const lead = first.shape.slice(0, -1);
  const widths = ins.map((t) => t.shape[t.shape.length - 1]);
  const total = ctx.out[ctx.out.length - 1];
  const rows = ctx.batch * prod(lead);
  const out = new Float64Array(rows * total);
  for (let r = 0; r < rows; r++) {
    let o = r * total;
    ins.forEach((t, i) => {
      const n = widths[i];
      out.set(t.data.subarray(r * n, (r + 1) * n), o);
      o += n;
    });
  }
  return { data: out, shape: ctx.out };
}

// ---------------------------------------------------------------------------------------------
// Helpers

function map(x: Tensor, f: (v: number) => number): Tensor {
  const out = new Float64Array(x.data.length);
  for (let i = 0; i < out.length; i++) out[i] = f(x.data[i]);
  return { data: out, shape: x.shape };
}

export { erf } from './forward-activations.js';
