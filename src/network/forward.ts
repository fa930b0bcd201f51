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
 *
 * Every shape is worked out and checked first, by the shape pass (forward-shapes.ts), before any
 * activation is allocated; the kernels below then trust their shapes.
 */
import { ENormError, type ENormErrorCode } from '../errors.js';
import { ELEMENTWISE, softmax, type Tensor } from './forward-activations.js';
import { forwardShapes, layerError, pair, prod, window2d, type Window } from './forward-shapes.js';
import { NETWORK_INPUT, resolveGraph } from './graph.js';
import type {
  ActivationLayer, BatchNormLayer, Conv2DLayer, DenseLayer, DepthwiseConv2DLayer,
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

interface Ctx {
  batch: number;
  index: number;
  name: string;
  /** The layer's output shape per example, from the shape pass. */
  out: number[];
}

type Kernel<K extends LayerKind> = (layer: Layer & { kind: K }, ins: Tensor[], ctx: Ctx) => Tensor;

/** A Map, so that a layer kind such as 'constructor' finds no kernel. */
const KERNELS = new Map<LayerKind, Kernel<LayerKind>>(Object.entries({
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
    const name = k === NETWORK_INPUT ? 'the network input' : `input '${graph.names[k]}'`;
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
    values[k] = kernel(layer, ins, { batch, index: k, name: graph.names[k], out: plan.shapes[k] });
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

function dense(layer: DenseLayer, [x]: Tensor[], ctx: Ctx): Tensor {
  const layout = layer.layout ?? 'io';
  const [nIn, nOut] = layout === 'io' ? layer.shape : [layer.shape[1], layer.shape[0]];
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
 * filling the output position with the bias. Returns the output buffer. Only taps that land inside
 * the input are visited (the ranges are clamped, not skipped one by one), so a window far larger
 * than the input costs what the input holds, not what the window spans.
 */
function slideWindow(
  x: Tensor, g: Window, kh: number, kw: number, cout: number, bias: Float32Array | undefined, batch: number,
  visit: (out: Float64Array, o: number, xi: number, tap: number) => void,
): Float64Array {
  const [h, w, c] = x.shape;
  const out = new Float64Array(batch * g.oh * g.ow * cout);
  for (let b = 0; b < batch; b++) {
    for (let oy = 0; oy < g.oh; oy++) {
      const y0 = oy * g.sh - g.padTop; // input row of tap ky = 0
      const kyFrom = Math.max(0, -y0);
      const kyTo = Math.min(kh, h - y0);
      for (let ox = 0; ox < g.ow; ox++) {
        const o = ((b * g.oh + oy) * g.ow + ox) * cout;
        if (bias !== undefined) for (let co = 0; co < cout; co++) out[o + co] = bias[co];
        const x0 = ox * g.sw - g.padLeft;
        const kxFrom = Math.max(0, -x0);
        const kxTo = Math.min(kw, w - x0);
        for (let ky = kyFrom; ky < kyTo; ky++) {
          for (let kx = kxFrom; kx < kxTo; kx++) visit(out, o, ((b * h + y0 + ky) * w + x0 + kx) * c, ky * kw + kx);
        }
      }
    }
  }
  return out;
}

function conv2d(layer: Conv2DLayer, [x]: Tensor[], ctx: Ctx): Tensor {
  const hwio = (layer.layout ?? 'hwio') === 'hwio';
  const [kh, kw, cin, cout] = hwio ? layer.shape : [layer.shape[2], layer.shape[3], layer.shape[1], layer.shape[0]];
  const [h, w] = x.shape;
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
  const hwcm = (layer.layout ?? 'hwcm') === 'hwcm';
  const [h, w, cin] = x.shape;
  const [kh, kw] = hwcm ? layer.shape : [layer.shape[2], layer.shape[3]];
  const cout = ctx.out[2];
  const mult = cout / cin;
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

function leakyRelu(layer: LeakyReluLayer, [x]: Tensor[]): Tensor {
  const alpha = layer.alpha ?? 0.3;
  return map(x, (v) => (v < 0 ? alpha * v : v));
}

function activation(layer: ActivationLayer, [x]: Tensor[], ctx: Ctx): Tensor {
  if (layer.fn === 'softmax') return softmax(x);
  // The shape pass accepted only known functions; Object.hasOwn keeps 'constructor' out all the same.
  if (!Object.hasOwn(ELEMENTWISE, layer.fn)) throw layerError('E_LAYER_KIND', ctx.name, ctx.index, `unknown activation '${String(layer.fn)}'`);
  return map(x, ELEMENTWISE[layer.fn]);
}

function pool(layer: PoolLayer, [x]: Tensor[], ctx: Ctx): Tensor {
  const [ph, pw] = pair(layer.size, ctx, 'size');
  const [h, w, c] = x.shape;
  const g = window2d(h, w, ph, pw, layer.strides ?? layer.size, layer.padding, ctx);
  const isMax = layer.kind === 'max-pool';
  const out = new Float64Array(ctx.batch * g.oh * g.ow * c);
  const acc = new Float64Array(c);
  for (let b = 0; b < ctx.batch; b++) {
    for (let oy = 0; oy < g.oh; oy++) {
      const y0 = oy * g.sh - g.padTop;
      const yFrom = Math.max(0, y0);
      const yTo = Math.min(h, y0 + ph);
      for (let ox = 0; ox < g.ow; ox++) {
        const x0 = ox * g.sw - g.padLeft;
        const xFrom = Math.max(0, x0);
        const xTo = Math.min(w, x0 + pw);
        acc.fill(isMax ? -Infinity : 0);
        // Only the valid (non-padded) elements: 'same' average pooling divides by their count, as TF does.
        const count = (yTo - yFrom) * (xTo - xFrom);
        for (let iy = yFrom; iy < yTo; iy++) {
          for (let ix = xFrom; ix < xTo; ix++) {
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
  const [h, w, c] = x.shape;
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

function concat(_layer: Layer, ins: Tensor[], ctx: Ctx): Tensor {
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

function fail(code: ENormErrorCode, name: string, index: number, message: string): ENormError {
  return layerError(code, name, index, message);
}

export { erf } from './forward-activations.js';
