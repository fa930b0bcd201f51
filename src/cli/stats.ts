import { forward } from '../network/forward.js';
import { layerName, type Network } from '../network/layers.js';
import { mulberry32 } from '../network/random.js';
import { outputUnitOf, outputUnits, type WeightedLayer } from '../network/validate.js';

export interface LayerNorms {
  layer: string;
  kind: string;
  units: number;
  /** ||W||_p of the whole weight tensor. */
  norm: number;
  /** max / min of the per-unit incoming norms ||W_i||_p over units with a non-zero norm (1 = all equal). */
  spread: number;
}

/** Per weighted layer: tensor norm and spread of the per-output-unit norms. */
export function layerNorms(net: Network, p: number): LayerNorms[] {
  const rows: LayerNorms[] = [];
  net.forEach((layer, k) => {
    if (layer.kind !== 'dense' && layer.kind !== 'conv2d' && layer.kind !== 'depthwise-conv2d' && layer.kind !== 'batch-norm') return;
    let sums: Float64Array;
    if (layer.kind === 'batch-norm') {
      if (!layer.gamma) return;
      sums = Float64Array.from(layer.gamma, (g) => Math.abs(g) ** p);
    } else {
      const w = layer as WeightedLayer;
      sums = new Float64Array(outputUnits(w));
      const unit = outputUnitOf(w);
      w.weight.forEach((x, i) => { sums[unit(i)] += Math.abs(x) ** p; });
    }
    const norms = Array.from(sums, (s) => s ** (1 / p)).filter((n) => n > 0);
    rows.push({
      layer: layerName(layer, k),
      kind: layer.kind === 'batch-norm' ? 'batch-norm (gamma)' : layer.kind,
      units: sums.length,
      norm: sums.reduce((a, b) => a + b, 0) ** (1 / p),
      spread: norms.length ? Math.max(...norms) / Math.min(...norms) : 1,
    });
  });
  return rows;
}

/** `count` example-major inputs uniform in [0, 1) for per-example `shape`. */
export function randomInputBatch(shape: number[], count: number, seed: number): Float32Array {
  const rng = mulberry32(seed);
  const x = new Float32Array(count * shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < x.length; i++) x[i] = rng();
  return x;
}

/** All outputs of the network on `input`, concatenated. */
export function outputsOf(net: Network, input: Float32Array, count: number, shape: number[]): Float64Array {
  const outs = forward(net, [input], { batch: count, inputShapes: [shape] });
  const all = new Float64Array(outs.reduce((a, o) => a + o.length, 0));
  let at = 0;
  for (const o of outs) { all.set(o, at); at += o.length; }
  return all;
}

/** Largest |after - before|, absolute and relative to the largest |before|. */
export function deviation(before: Float64Array, after: Float64Array): { absolute: number; relative: number; scale: number } {
  let absolute = 0;
  let scale = 0;
  for (let i = 0; i < before.length; i++) {
    absolute = Math.max(absolute, Math.abs(after[i] - before[i]));
    scale = Math.max(scale, Math.abs(before[i]));
  }
  return { absolute, relative: scale > 0 ? absolute / scale : absolute, scale };
}
