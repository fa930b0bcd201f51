import { outputUnitOf, outputUnits } from './geometry.js';
import { resolveGraph } from './graph.js';
import { isWeighted, type BatchNormLayer, type Layer, type Network } from './layers.js';
import { validateLayers } from './validate.js';

/**
 * Folds every batch norm that directly and solely follows a dense or convolution layer into it,
 * for inference models:  W' = W * g,  b' = (b - mean) * g + beta,  g = gamma / sqrt(variance + epsilon).
 * Returns a new network (folded layers get new arrays; the others share theirs); later layers
 * that named the batch norm read the folded layer instead.
 */
export function foldBatchNorm(net: Network): Network {
  validateLayers(net);
  const graph = resolveGraph(net);
  const renamed = new Map<string, string>();
  const out: Layer[] = [];
  const folded = new Set<number>();
  net.forEach((layer, k) => {
    if (folded.has(k)) return;
    const next = graph.consumers[k];
    const bnIndex = next.length === 1 ? next[0] : -1;
    const bn = bnIndex >= 0 ? net[bnIndex] : undefined;
    if (!isWeighted(layer) || bn?.kind !== 'batch-norm') {
      out.push(layer);
      return;
    }
    const norm = bn as BatchNormLayer;
    const units = outputUnits(layer);
    const eps = norm.epsilon ?? 1e-3;
    const g = Float64Array.from({ length: units }, (_, i) => (norm.gamma ? norm.gamma[i] : 1) / Math.sqrt(norm.variance[i] + eps));
    const unit = outputUnitOf(layer);
    const weight = Float32Array.from(layer.weight, (w, x) => w * g[unit(x)]);
    const bias = Float32Array.from({ length: units }, (_, i) => ((layer.bias ? layer.bias[i] : 0) - norm.mean[i]) * g[i] + (norm.beta ? norm.beta[i] : 0));
    const name = layer.name ?? norm.name;
    if (norm.name !== undefined && name !== undefined && norm.name !== name) renamed.set(norm.name, name);
    const { companions: _dropped, ...rest } = layer;
    out.push({ ...rest, name, weight, bias } as Layer);
    folded.add(bnIndex);
  });
  return out.map((l) => (l.inputs ? { ...l, inputs: l.inputs.map((n) => renamed.get(n) ?? n) } : l) as Layer);
}
