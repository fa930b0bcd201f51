/**
 * The float64 evaluator's kernels over feature maps: convolutions and pooling on NHWC maps
 * ([batch, h, w, c]), with TF 'same' / 'valid' windows. Kernels come in their default layout
 * (HWIO / HWCM / HWOI) from geometry.ts, whatever the layer's own layout. Shapes were checked by the
 * shape pass (forward-shapes.ts); these loops trust them.
 */
import type { LayerAt } from '../errors.js';
import type { Tensor } from './forward-activations.js';
import { pair, transposeWindow, window2d, type Window } from './forward-shapes.js';
import { groupsOf, kernelDims, toDefaultLayout } from './geometry.js';
import type { Conv2DLayer, Conv2DTransposeLayer, DepthwiseConv2DLayer, PoolLayer } from './layers.js';

/** What a kernel knows of its call: the batch, where the layer is, and its output shape per example (from the shape pass). */
export interface KernelCtx extends LayerAt {
  batch: number;
  out: number[];
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

export function conv2d(layer: Conv2DLayer, [x]: Tensor[], ctx: KernelCtx): Tensor {
  const d = kernelDims(layer);
  const { kh, kw, cin, cout } = d;
  const [h, w] = x.shape;
  // HWIO kernel: element (ky, kx, i, o) at ((ky*kw + kx)*I + i)*O + o, I = cin the channels per group.
  // Group gr: input channel gr*I + i feeds outputs [gr*opg, (gr + 1)*opg), opg = O / groups.
  const k = toDefaultLayout(layer, d);
  const groups = groupsOf(layer);
  const opg = cout / groups;
  const g = window2d(h, w, kh, kw, layer.strides, layer.padding, ctx);
  const out = slideWindow(x, g, kh, kw, cout, layer.bias, ctx.batch, (out, o, xi, tap) => {
    const ki = tap * cin * cout;
    for (let gr = 0; gr < groups; gr++) {
      const coFrom = gr * opg;
      for (let ci = 0; ci < cin; ci++) {
        const xv = x.data[xi + gr * cin + ci];
        if (xv === 0) continue;
        const kr = ki + ci * cout;
        for (let co = coFrom; co < coFrom + opg; co++) out[o + co] += xv * k[kr + co];
      }
    }
  });
  return { data: out, shape: [g.oh, g.ow, cout] };
}

export function depthwiseConv2d(layer: DepthwiseConv2DLayer, [x]: Tensor[], ctx: KernelCtx): Tensor {
  const [h, w, cin] = x.shape;
  const d = kernelDims(layer, cin);
  const { kh, kw, cout } = d;
  const mult = cout / cin;
  // HWCM kernel: element (ky, kx, c, m) at ((ky*kw + kx)*C + c)*M + m, output channel c*M + m.
  const k = toDefaultLayout(layer, d);
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

/**
 * The adjoint of conv2d: every input pixel (iy, ix) scatters x[iy, ix, :] times the kernel onto the
 * output pixels (iy*sh + ky - padTop, ix*sw + kx - padLeft); taps that land in the padding are dropped.
 * y[oy, ox, o] = bias[o] + sum over the pixels and taps that land there of x[iy, ix, i] * W[ky, kx, o, i].
 */
export function conv2dTranspose(layer: Conv2DTransposeLayer, [x]: Tensor[], ctx: KernelCtx): Tensor {
  const d = kernelDims(layer);
  const { kh, kw, cin, cout } = d;
  const [h, w] = x.shape;
  // HWOI kernel: element (ky, kx, o, i) at ((ky*kw + kx)*O + o)*I + i.
  const k = toDefaultLayout(layer, d);
  const g = transposeWindow(h, w, kh, kw, layer.strides, layer.padding, ctx);
  const out = new Float64Array(ctx.batch * g.oh * g.ow * cout);
  if (layer.bias !== undefined) for (let o = 0; o < out.length; o += cout) out.set(layer.bias, o);
  for (let b = 0; b < ctx.batch; b++) {
    for (let iy = 0; iy < h; iy++) {
      for (let ix = 0; ix < w; ix++) {
        const xi = ((b * h + iy) * w + ix) * cin;
        for (let ky = 0; ky < kh; ky++) {
          const oy = iy * g.sh + ky - g.padTop;
          if (oy < 0 || oy >= g.oh) continue;
          for (let kx = 0; kx < kw; kx++) {
            const ox = ix * g.sw + kx - g.padLeft;
            if (ox < 0 || ox >= g.ow) continue;
            scatterTap(out, ((b * g.oh + oy) * g.ow + ox) * cout, x.data, xi, k, (ky * kw + kx) * cout * cin, cin, cout);
          }
        }
      }
    }
  }
  return { data: out, shape: [g.oh, g.ow, cout] };
}

/** out[o + co] += sum_ci x[xi + ci] * k[ki + co*cin + ci]: one input pixel through one kernel tap. */
function scatterTap(out: Float64Array, o: number, x: Float64Array, xi: number, k: Float64Array, ki: number, cin: number, cout: number): void {
  for (let co = 0; co < cout; co++) {
    const kr = ki + co * cin;
    let acc = 0;
    for (let ci = 0; ci < cin; ci++) acc += x[xi + ci] * k[kr + ci];
    out[o + co] += acc;
  }
}

export function pool(layer: PoolLayer, [x]: Tensor[], ctx: KernelCtx): Tensor {
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

export function globalPool(x: Tensor, ctx: KernelCtx, isMax: boolean): Tensor {
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
