/**
 * A plain float64 forward evaluator for every layer kind.
 *
 * It exists to check that rescaling preserves the network's function (tests, and the CLI's
 * "largest output deviation" report), so it knows nothing about rescaling and favours
 * obviously-correct loops over speed.
 *
 * Internally every activation map is NHWC ([batch, h, w, c]) and every kernel is converted to
 * HWIO / HWCM, whatever the network's own layout; inputs and outputs are converted at the edges.
 * Feature vectors are [batch, features]. A map's per-example shape is [h, w, c] internally.
 */
import { ENormError, type ENormErrorCode } from '../errors.js';
import { NETWORK_INPUT, resolveGraph } from './graph.js';
import type {
  ActivationLayer, BarrierActivation, BatchNormLayer, Conv2DLayer, DenseLayer, DepthwiseConv2DLayer,
  FlattenLayer, Layer, LayerKind, LeakyReluLayer, Network, PoolLayer,
} from './layers.js';

export interface ForwardOptions {
  /** Number of examples in every input array (example-major). */
  batch: number;
  /**
   * Per-example shape of each network input, overriding the 'input' layers' `shape`:
   * [features], or a map in the network's layout ([h, w, c] for NHWC, [c, h, w] for NCHW).
   */
  inputShapes?: number[][];
}

/** Activation layout of a network: 'nhwc' for 'hwio' / 'hwcm' kernels, 'nchw' for 'oihw' ones. */
export type ActivationLayout = 'nhwc' | 'nchw';

/** A batch of activations: `data` holds `batch` examples of `shape` each (maps are [h, w, c]). */
interface Tensor {
  data: Float64Array;
  shape: number[];
}

interface Ctx {
  batch: number;
  index: number;
  name: string;
}

type Kernel<K extends LayerKind> = (layer: Layer & { kind: K }, ins: Tensor[], ctx: Ctx) => Tensor;

const KERNELS: { [K in LayerKind]: Kernel<K> } = {
  input: () => { throw new Error('unreachable: input layers are bound before evaluation'); },
  dense,
  conv2d,
  'depthwise-conv2d': depthwiseConv2d,
  'batch-norm': batchNorm,
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
};

/**
 * Runs the network on `batch` examples per input and returns one Float64Array per network output
 * (the layers nothing reads, in layer order), example-major, in the output's natural layout:
 * a map as NHWC or NCHW (the network's layout), a vector as [batch, features].
 */
export function forward(net: Network, inputs: ArrayLike<number>[], options: ForwardOptions): Float64Array[] {
  const graph = resolveGraph(net);
  const batch = options?.batch;
  if (!Number.isInteger(batch) || batch < 1) {
    throw new ENormError('E_OPTION', `forward: batch must be a positive integer, got ${String(batch)}`);
  }
  const layout = networkLayout(net, graph.names);

  // The network inputs: the 'input' layers in layer order, or one implicit input.
  const inputLayers = net.flatMap((l, k) => (l.kind === 'input' ? [k] : []));
  const inputCount = inputLayers.length > 0 ? inputLayers.length : 1;
  if (!Array.isArray(inputs) || inputs.length !== inputCount) {
    throw new ENormError('E_OPTION', `forward: the network has ${inputCount} input(s), got ${Array.isArray(inputs) ? inputs.length : 'no array'}`);
  }
  if (options.inputShapes !== undefined && options.inputShapes.length !== inputCount) {
    throw new ENormError('E_OPTION', `forward: inputShapes gives ${options.inputShapes.length} shape(s) for ${inputCount} network input(s)`);
  }
  const bound = (i: number, k: number): Tensor => {
    const declared = options.inputShapes?.[i] ?? (k === NETWORK_INPUT ? undefined : (net[k] as { shape?: number[] }).shape);
    const name = k === NETWORK_INPUT ? 'the network input' : `input '${graph.names[k]}'`;
    const shape = declared ?? inferVectorShape(net, graph.consumers, k, name);
    return bindInput(inputs[i], shape, batch, layout, name, k);
  };

  const values: (Tensor | undefined)[] = net.map(() => undefined);
  const implicit = inputLayers.length === 0 ? bound(0, NETWORK_INPUT) : undefined;
  inputLayers.forEach((k, i) => { values[k] = bound(i, k); });

  // Remaining readers per layer, so intermediate maps can be released early.
  const pending = graph.consumers.map((c) => c.length);
  net.forEach((layer, k) => {
    if (layer.kind === 'input') return;
    const kernel = KERNELS[layer.kind] as Kernel<LayerKind> | undefined;
    if (kernel === undefined) {
      throw new ENormError('E_LAYER_KIND', `layer '${graph.names[k]}': unknown layer kind '${String(layer.kind)}'`, { layerIndex: k, layer: graph.names[k] });
    }
    const ins = graph.inputs[k].map((j) => (j === NETWORK_INPUT ? implicit : values[j]) as Tensor);
    values[k] = kernel(layer, ins, { batch, index: k, name: graph.names[k] });
    for (const j of graph.inputs[k]) {
      if (j !== NETWORK_INPUT && --pending[j] === 0) values[j] = undefined;
    }
  });

  return graph.outputs.map((k) => {
    const t = values[k] as Tensor;
    return layout === 'nchw' && t.shape.length === 3 ? nhwcToNchw(t, batch) : t.data.slice();
  });
}

/** The activation layout implied by the network's convolution layouts ('nhwc' when it has none). */
export function networkLayout(net: Network, names: string[] = net.map((l, k) => l.name ?? `#${k}`)): ActivationLayout {
  let found: { layout: ActivationLayout; k: number } | undefined;
  net.forEach((layer, k) => {
    let l: ActivationLayout;
    if (layer.kind === 'conv2d') {
      const lay = layer.layout ?? 'hwio';
      if (lay !== 'hwio' && lay !== 'oihw') throw fail('E_LAYOUT', names[k], k, `unknown conv2d layout '${String(lay)}' (use 'hwio' or 'oihw')`);
      l = lay === 'hwio' ? 'nhwc' : 'nchw';
    } else if (layer.kind === 'depthwise-conv2d') {
      const lay = layer.layout ?? 'hwcm';
      if (lay !== 'hwcm' && lay !== 'oihw') throw fail('E_LAYOUT', names[k], k, `unknown depthwise-conv2d layout '${String(lay)}' (use 'hwcm' or 'oihw')`);
      l = lay === 'hwcm' ? 'nhwc' : 'nchw';
    } else {
      return;
    }
    if (found === undefined) found = { layout: l, k };
    else if (found.layout !== l) {
      throw fail('E_LAYOUT', names[k], k,
        `its kernel layout implies ${l.toUpperCase()} activations but layer '${names[found.k]}' implies ${found.layout.toUpperCase()}; one network must use one convolution layout`);
    }
  });
  return found?.layout ?? 'nhwc';
}

// ---------------------------------------------------------------------------------------------
// Inputs and outputs

function bindInput(raw: ArrayLike<number>, shape: number[], batch: number, layout: ActivationLayout, name: string, k: number): Tensor {
  const where = k === NETWORK_INPUT ? {} : { layerIndex: k, layer: name };
  if (!Array.isArray(shape) || shape.length === 0 || shape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new ENormError('E_SHAPE', `${name}: shape must be a non-empty list of positive integers, got ${JSON.stringify(shape)}`, where);
  }
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

/** An input without a declared shape is a flat vector as wide as the first dense layer it reaches. */
function inferVectorShape(net: Network, consumers: number[][], k: number, name: string): number[] {
  const reached = new Set<number>();
  const frontier = k === NETWORK_INPUT ? [0] : [...consumers[k]];
  while (frontier.length > 0) {
    const j = frontier.pop() as number;
    if (reached.has(j)) continue;
    reached.add(j);
    frontier.push(...consumers[j]);
  }
  const first = [...reached].sort((a, b) => a - b).find((j) => net[j].kind === 'dense');
  if (first === undefined) {
    throw new ENormError('E_SHAPE', `${name} has no shape and feeds no dense layer to take one from: give options.inputShapes`);
  }
  const d = net[first] as DenseLayer;
  return [(d.layout ?? 'io') === 'io' ? d.shape[0] : d.shape[1]];
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
// Layer kernels

function dense(layer: DenseLayer, [x]: Tensor[], ctx: Ctx): Tensor {
  const layout = layer.layout ?? 'io';
  if (layout !== 'io' && layout !== 'oi') throw fail('E_LAYOUT', ctx.name, ctx.index, `unknown dense layout '${String(layout)}' (use 'io' or 'oi')`);
  checkShape(layer.shape, 2, ctx, 'dense shape');
  const [nIn, nOut] = layout === 'io' ? layer.shape : [layer.shape[1], layer.shape[0]];
  checkLength(layer.weight, nIn * nOut, ctx, 'weight');
  if (layer.bias !== undefined) checkLength(layer.bias, nOut, ctx, 'bias');
  if (x.shape.length !== 1) {
    throw fail('E_WIDTH', ctx.name, ctx.index, `dense reads a [${x.shape.join(', ')}] map; put a flatten (or a global pool) before it`);
  }
  if (x.shape[0] !== nIn) {
    throw fail('E_WIDTH', ctx.name, ctx.index, `dense expects ${nIn} input features but receives ${x.shape[0]}`);
  }
  // Weights as [in, out] so the inner loop runs over contiguous outputs.
  const w = layout === 'io' ? Float64Array.from(layer.weight) : transpose2(layer.weight, nOut, nIn);
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

/**
 * Walks every output position and every kernel tap inside the (padded) input of an NHWC map:
 * calls visit(output buffer, output offset, input offset of the tap's pixel, tap index ky*kw + kx) after
 * filling the output position with the bias. Returns the output buffer.
 */
function slideWindow(
  x: Tensor, g: Window, kh: number, kw: number, cout: number, bias: Float32Array | undefined, batch: number,
  visit: (out: Float64Array, o: number, xi: number, tap: number) => void,
): Float64Array {
  const [h, w, c] = x.shape;
  const out = new Float64Array(batch * g.oh * g.ow * cout);
  for (let b = 0; b < batch; b++) {
    for (let oy = 0; oy < g.oh; oy++) {
      for (let ox = 0; ox < g.ow; ox++) {
        const o = ((b * g.oh + oy) * g.ow + ox) * cout;
        if (bias !== undefined) for (let co = 0; co < cout; co++) out[o + co] = bias[co];
        for (let ky = 0; ky < kh; ky++) {
          const iy = oy * g.sh - g.padTop + ky;
          if (iy < 0 || iy >= h) continue;
          for (let kx = 0; kx < kw; kx++) {
            const ix = ox * g.sw - g.padLeft + kx;
            if (ix < 0 || ix >= w) continue;
            visit(out, o, ((b * h + iy) * w + ix) * c, ky * kw + kx);
          }
        }
      }
    }
  }
  return out;
}

function conv2d(layer: Conv2DLayer, [x]: Tensor[], ctx: Ctx): Tensor {
  checkShape(layer.shape, 4, ctx, 'conv2d shape');
  const hwio = (layer.layout ?? 'hwio') === 'hwio';
  const [kh, kw, cin, cout] = hwio ? layer.shape : [layer.shape[2], layer.shape[3], layer.shape[1], layer.shape[0]];
  checkLength(layer.weight, kh * kw * cin * cout, ctx, 'weight');
  if (layer.bias !== undefined) checkLength(layer.bias, cout, ctx, 'bias');
  const [h, w, c] = mapShape(x, ctx, 'conv2d');
  if (c !== cin) throw fail('E_WIDTH', ctx.name, ctx.index, `conv2d expects ${cin} input channels but receives ${c}`);
  const k = hwio ? Float64Array.from(layer.weight) : oihwToHwio(layer.weight, cout, cin, kh, kw);
  const g = window2d(h, w, kh, kw, layer.strides, layer.padding, ctx);
  const out = slideWindow(x, g, kh, kw, cout, layer.bias, ctx.batch, (out, o, xi, tap) => {
    const ki = tap * cin * cout;
    for (let ci = 0; ci < cin; ci++) {
      const xv = x.data[xi + ci];
      if (xv === 0) continue;
      const kr = ki + ci * cout;
      for (let co = 0; co < cout; co++) out[o + co] += xv * k[kr + co];
    }
  });
  return { data: out, shape: [g.oh, g.ow, cout] };
}

function depthwiseConv2d(layer: DepthwiseConv2DLayer, [x]: Tensor[], ctx: Ctx): Tensor {
  checkShape(layer.shape, 4, ctx, 'depthwise-conv2d shape');
  const hwcm = (layer.layout ?? 'hwcm') === 'hwcm';
  let kh: number, kw: number, cin: number, mult: number;
  if (hwcm) {
    [kh, kw, cin, mult] = layer.shape;
  } else {
    const [cm, one] = layer.shape;
    [kh, kw] = [layer.shape[2], layer.shape[3]];
    if (one !== 1) throw fail('E_SHAPE', ctx.name, ctx.index, `depthwise 'oihw' shape must be [channels*multiplier, 1, kh, kw], got [${layer.shape.join(', ')}]`);
    cin = x.shape.length === 3 ? x.shape[2] : cm;
    if (cm % cin !== 0) throw fail('E_WIDTH', ctx.name, ctx.index, `depthwise kernel has ${cm} output channels, not a multiple of its ${cin} input channels`);
    mult = cm / cin;
  }
  const cout = cin * mult;
  checkLength(layer.weight, kh * kw * cout, ctx, 'weight');
  if (layer.bias !== undefined) checkLength(layer.bias, cout, ctx, 'bias');
  const [h, w, c] = mapShape(x, ctx, 'depthwise-conv2d');
  if (c !== cin) throw fail('E_WIDTH', ctx.name, ctx.index, `depthwise-conv2d expects ${cin} input channels but receives ${c}`);
  // HWCM kernel: element (ky, kx, c, m) at ((ky*kw + kx)*C + c)*M + m, output channel c*M + m.
  const k = hwcm ? Float64Array.from(layer.weight) : oihwToHwio(layer.weight, cout, 1, kh, kw);
  const g = window2d(h, w, kh, kw, layer.strides, layer.padding, ctx);
  const out = slideWindow(x, g, kh, kw, cout, layer.bias, ctx.batch, (out, o, xi, tap) => {
    const ki = tap * cout;
    for (let ci = 0; ci < cin; ci++) {
      const xv = x.data[xi + ci];
      const base = ci * mult;
      for (let m = 0; m < mult; m++) out[o + base + m] += xv * k[ki + base + m];
    }
  });
  return { data: out, shape: [g.oh, g.ow, cout] };
}

function batchNorm(layer: BatchNormLayer, [x]: Tensor[], ctx: Ctx): Tensor {
  const n = layer.mean.length;
  checkLength(layer.variance, n, ctx, 'variance');
  if (layer.gamma !== undefined) checkLength(layer.gamma, n, ctx, 'gamma');
  if (layer.beta !== undefined) checkLength(layer.beta, n, ctx, 'beta');
  const c = x.shape[x.shape.length - 1];
  if (c !== n) throw fail('E_WIDTH', ctx.name, ctx.index, `batch-norm has ${n} channels but receives ${c}`);
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

function leakyRelu(layer: LeakyReluLayer, [x]: Tensor[]): Tensor {
  const alpha = layer.alpha ?? 0.3;
  return map(x, (v) => (v < 0 ? alpha * v : v));
}

const SELU_ALPHA = 1.6732632423543772848170429916717;
const SELU_SCALE = 1.0507009873554804934193349852946;

const sigmoid = (v: number): number => (v >= 0 ? 1 / (1 + Math.exp(-v)) : Math.exp(v) / (1 + Math.exp(v)));

const ELEMENTWISE: Record<Exclude<BarrierActivation, 'softmax'>, (v: number) => number> = {
  sigmoid,
  tanh: Math.tanh,
  /** Exact GELU, x * Phi(x) = x/2 * (1 + erf(x/sqrt 2)) (the erf form, as PyTorch and tfjs 'gelu'). */
  gelu: (v) => 0.5 * v * (1 + erf(v / Math.SQRT2)),
  elu: (v) => (v > 0 ? v : Math.expm1(v)),
  selu: (v) => SELU_SCALE * (v > 0 ? v : SELU_ALPHA * Math.expm1(v)),
  softplus: (v) => Math.max(v, 0) + Math.log1p(Math.exp(-Math.abs(v))),
  swish: (v) => v * sigmoid(v),
  relu6: (v) => Math.min(Math.max(v, 0), 6),
};

function activation(layer: ActivationLayer, [x]: Tensor[], ctx: Ctx): Tensor {
  if (layer.fn === 'softmax') return softmax(x);
  const f = ELEMENTWISE[layer.fn] as ((v: number) => number) | undefined;
  if (f === undefined) throw fail('E_LAYER_KIND', ctx.name, ctx.index, `unknown activation '${String(layer.fn)}'`);
  return map(x, f);
}

/** Softmax over the last axis: the features of a vector, the channels of a map. */
function softmax(x: Tensor): Tensor {
  const n = x.shape[x.shape.length - 1];
  const out = new Float64Array(x.data.length);
  for (let r = 0; r < out.length; r += n) {
    let max = -Infinity;
    for (let i = 0; i < n; i++) max = Math.max(max, x.data[r + i]);
    let sum = 0;
    for (let i = 0; i < n; i++) sum += (out[r + i] = Math.exp(x.data[r + i] - max));
    for (let i = 0; i < n; i++) out[r + i] /= sum;
  }
  return { data: out, shape: x.shape };
}

function pool(layer: PoolLayer, [x]: Tensor[], ctx: Ctx): Tensor {
  const [ph, pw] = pair(layer.size, ctx, 'size');
  const [h, w, c] = mapShape(x, ctx, layer.kind);
  const g = window2d(h, w, ph, pw, layer.strides ?? layer.size, layer.padding, ctx);
  const isMax = layer.kind === 'max-pool';
  const out = new Float64Array(ctx.batch * g.oh * g.ow * c);
  const acc = new Float64Array(c);
  for (let b = 0; b < ctx.batch; b++) {
    for (let oy = 0; oy < g.oh; oy++) {
      for (let ox = 0; ox < g.ow; ox++) {
        acc.fill(isMax ? -Infinity : 0);
        let count = 0; // valid (non-padded) elements: 'same' average pooling divides by this, as TF does
        for (let ky = 0; ky < ph; ky++) {
          const iy = oy * g.sh - g.padTop + ky;
          if (iy < 0 || iy >= h) continue;
          for (let kx = 0; kx < pw; kx++) {
            const ix = ox * g.sw - g.padLeft + kx;
            if (ix < 0 || ix >= w) continue;
            count++;
            const xi = ((b * h + iy) * w + ix) * c;
            if (isMax) for (let ch = 0; ch < c; ch++) acc[ch] = Math.max(acc[ch], x.data[xi + ch]);
            else for (let ch = 0; ch < c; ch++) acc[ch] += x.data[xi + ch];
          }
        }
        const o = ((b * g.oh + oy) * g.ow + ox) * c;
        for (let ch = 0; ch < c; ch++) out[o + ch] = isMax ? acc[ch] : acc[ch] / count;
      }
    }
  }
  return { data: out, shape: [g.oh, g.ow, c] };
}

function globalPool(x: Tensor, ctx: Ctx, isMax: boolean): Tensor {
  const [h, w, c] = mapShape(x, ctx, isMax ? 'global-max-pool' : 'global-avg-pool');
  const hw = h * w;
  const out = new Float64Array(ctx.batch * c).fill(isMax ? -Infinity : 0);
  for (let b = 0; b < ctx.batch; b++) {
    for (let p = 0; p < hw; p++) {
      const xi = (b * hw + p) * c;
      for (let ch = 0; ch < c; ch++) {
        const v = x.data[xi + ch];
        out[b * c + ch] = isMax ? Math.max(out[b * c + ch], v) : out[b * c + ch] + v;
      }
    }
    if (!isMax) for (let ch = 0; ch < c; ch++) out[b * c + ch] /= hw;
  }
  return { data: out, shape: [c] };
}

function flatten(layer: FlattenLayer, [x]: Tensor[], ctx: Ctx): Tensor {
  const order = layer.order ?? 'channels-last';
  if (order !== 'channels-last' && order !== 'channels-first') {
    throw fail('E_LAYOUT', ctx.name, ctx.index, `unknown flatten order '${String(order)}' (use 'channels-last' or 'channels-first')`);
  }
  const size = prod(x.shape);
  if (x.shape.length !== 3 || order === 'channels-last') return { data: x.data, shape: [size] };
  return { data: nhwcToNchw(x, ctx.batch), shape: [size] }; // (h, w, c) -> (c, h, w)
}

function add(_layer: Layer, ins: Tensor[], ctx: Ctx): Tensor {
  const [first] = ins;
  ins.forEach((t, i) => {
    if (!sameShape(t.shape, first.shape)) {
      throw fail('E_WIDTH', ctx.name, ctx.index,
        `add needs inputs of one shape, but input 0 is [${showShape(first)}] and input ${i} is [${showShape(t)}]`);
    }
  });
  const out = Float64Array.from(first.data);
  for (const t of ins.slice(1)) for (let i = 0; i < out.length; i++) out[i] += t.data[i];
  return { data: out, shape: first.shape };
}

function concat(_layer: Layer, ins: Tensor[], ctx: Ctx): Tensor {
  const [first] = ins;
  const lead = first.shape.slice(0, -1);
  ins.forEach((t, i) => {
    if (t.shape.length !== first.shape.length || !sameShape(t.shape.slice(0, -1), lead)) {
      throw fail('E_WIDTH', ctx.name, ctx.index,
        `concat joins along the channel / feature axis, so all but that axis must match, but input 0 is [${showShape(first)}] and input ${i} is [${showShape(t)}]`);
    }
  });
  const widths = ins.map((t) => t.shape[t.shape.length - 1]);
  const total = widths.reduce((a, b) => a + b, 0);
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
  return { data: out, shape: [...lead, total] };
}

// ---------------------------------------------------------------------------------------------
// Helpers

interface Window { oh: number; ow: number; sh: number; sw: number; padTop: number; padLeft: number }

/** Output size and padding of a sliding window, with TF semantics for 'same'. */
function window2d(h: number, w: number, kh: number, kw: number, strides: number | [number, number] | undefined, padding: string | undefined, ctx: Ctx): Window {
  const [sh, sw] = pair(strides ?? 1, ctx, 'strides');
  const pad = padding ?? 'valid';
  if (pad === 'same') {
    const oh = Math.ceil(h / sh);
    const ow = Math.ceil(w / sw);
    const padTop = Math.floor(Math.max((oh - 1) * sh + kh - h, 0) / 2);
    const padLeft = Math.floor(Math.max((ow - 1) * sw + kw - w, 0) / 2);
    return { oh, ow, sh, sw, padTop, padLeft };
  }
  if (pad !== 'valid') throw fail('E_SHAPE', ctx.name, ctx.index, `padding must be 'valid' or 'same', got '${String(pad)}'`);
  if (h < kh || w < kw) {
    throw fail('E_WIDTH', ctx.name, ctx.index, `its ${kh}x${kw} window does not fit the ${h}x${w} input with 'valid' padding`);
  }
  return { oh: Math.floor((h - kh) / sh) + 1, ow: Math.floor((w - kw) / sw) + 1, sh, sw, padTop: 0, padLeft: 0 };
}

function pair(v: number | [number, number], ctx: Ctx, what: string): [number, number] {
  const p: number[] = typeof v === 'number' ? [v, v] : Array.isArray(v) ? v : [];
  if (p.length !== 2 || p.some((d) => !Number.isInteger(d) || d < 1)) {
    throw fail('E_SHAPE', ctx.name, ctx.index, `${what} must be a positive integer or a pair of them, got ${JSON.stringify(v)}`);
  }
  return [p[0], p[1]];
}

function mapShape(x: Tensor, ctx: Ctx, kind: string): [number, number, number] {
  if (x.shape.length !== 3) {
    throw fail('E_WIDTH', ctx.name, ctx.index, `${kind} needs an image map but receives a [${showShape(x)}] tensor (give the input a 3-D shape)`);
  }
  return [x.shape[0], x.shape[1], x.shape[2]];
}

function map(x: Tensor, f: (v: number) => number): Tensor {
  const out = new Float64Array(x.data.length);
  for (let i = 0; i < out.length; i++) out[i] = f(x.data[i]);
  return { data: out, shape: x.shape };
}

/** [rows, cols] row-major -> [cols, rows]. */
function transpose2(a: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
  return out;
}

/** [O, I, kh, kw] -> [kh, kw, I, O]. */
function oihwToHwio(a: ArrayLike<number>, o: number, i: number, kh: number, kw: number): Float64Array {
  const out = new Float64Array(a.length);
  for (let oc = 0; oc < o; oc++) {
    for (let ic = 0; ic < i; ic++) {
      for (let y = 0; y < kh; y++) {
        for (let x = 0; x < kw; x++) out[((y * kw + x) * i + ic) * o + oc] = a[((oc * i + ic) * kh + y) * kw + x];
      }
    }
  }
  return out;
}

function checkShape(shape: unknown, rank: number, ctx: Ctx, what: string): void {
  if (!Array.isArray(shape) || shape.length !== rank || shape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw fail('E_SHAPE', ctx.name, ctx.index, `${what} must be ${rank} positive integers, got ${JSON.stringify(shape)}`);
  }
}

function checkLength(a: ArrayLike<number> | undefined, n: number, ctx: Ctx, tensor: string): void {
  if (a === undefined || a === null || a.length !== n) {
    throw new ENormError('E_SHAPE', `layer '${ctx.name}': ${tensor} should hold ${n} values, has ${a?.length ?? 'none'}`,
      { layerIndex: ctx.index, layer: ctx.name, tensor });
  }
}

function fail(code: ENormErrorCode, name: string, index: number, message: string): ENormError {
  return new ENormError(code, `layer '${name}': ${message}`, { layerIndex: index, layer: name });
}

const prod = (s: number[]): number => s.reduce((a, b) => a * b, 1);
const sameShape = (a: number[], b: number[]): boolean => a.length === b.length && a.every((d, i) => d === b[i]);
const showShape = (t: Tensor): string => t.shape.join(', ');

/**
 * erf to double precision: the everywhere-convergent series
 * erf(z) = 2/sqrt(pi) * exp(-z^2) * sum_n 2^n z^(2n+1) / (1*3*...*(2n+1)),
 * whose terms are all positive (no cancellation); |erf(z)| rounds to 1 beyond |z| = 6.
 */
export function erf(z: number): number {
  if (Number.isNaN(z)) return NaN;
  const a = Math.abs(z);
  if (a >= 6) return Math.sign(z);
  let term = a;
  let sum = a;
  for (let n = 1; term > sum * 1e-17; n++) {
    term *= (2 * a * a) / (2 * n + 1);
    sum += term;
  }
  return Math.sign(z) * (2 / Math.sqrt(Math.PI)) * Math.exp(-a * a) * sum;
}
