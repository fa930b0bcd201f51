import { outputUnitOf, outputUnits } from '../network/geometry.js';
import { isAffineNorm, isWeighted, layerName, type Network, type WeightedLayer } from '../network/layers.js';

export interface LayerNorms {
  layer: string;
  kind: string;
  units: number;
  /** ||W||_p of the whole weight tensor (max |w| for p = ∞). */
  norm: number;
  /** max / min of the per-unit incoming norms ||W_i||_p over units with a non-zero norm (1 = all equal). */
  spread: number;
}

/** Per weighted layer: tensor norm and spread of the per-output-unit norms. Loops only: no spread of unbounded arrays. */
export function layerNorms(net: Network, p: number): LayerNorms[] {
  const rows: LayerNorms[] = [];
  net.forEach((layer, k) => {
    // Per unit sum |w|^p (max |w| for p = ∞): a weighted layer's kernel per output unit, a norm's gamma.
    let sums: Float64Array;
    if (isWeighted(layer)) sums = unitSums(layer, p);
    else if (isAffineNorm(layer) && layer.gamma) sums = Float64Array.from(layer.gamma, (g) => (p === Infinity ? Math.abs(g) : Math.abs(g) ** p));
    else return;
    let total = 0;
    let max = 0;
    let min = Infinity;
    for (const s of sums) {
      total = p === Infinity ? Math.max(total, s) : total + s;
      const n = p === Infinity ? s : s ** (1 / p);
      if (n > 0) {
        if (n > max) max = n;
        if (n < min) min = n;
      }
    }
    rows.push({
      layer: layerName(layer, k),
      kind: isAffineNorm(layer) ? `${layer.kind} (gamma)` : layer.kind,
      units: sums.length,
      norm: p === Infinity ? total : total ** (1 / p),
      spread: max > 0 ? max / min : 1,
    });
  });
  return rows;
}

/** Over each output unit's kernel elements: sum of |w|^p, or max |w| for p = ∞ (||W_i||_∞). */
function unitSums(layer: WeightedLayer, p: number): Float64Array {
  const sums = new Float64Array(outputUnits(layer));
  const unit = outputUnitOf(layer);
  const weight = layer.weight;
  if (p === Infinity) {
    for (let i = 0; i < weight.length; i++) sums[unit(i)] = Math.max(sums[unit(i)], Math.abs(weight[i]));
  } else {
    for (let i = 0; i < weight.length; i++) sums[unit(i)] += Math.abs(weight[i]) ** p;
  }
  return sums;
}
