import { outputUnitOf, outputUnits } from './geometry.js';
import { resolveGraph } from './graph.js';
import { isWeighted, type BatchNormLayer, type Layer, type Network, type WeightedLayer } from './layers.js';
import { validateLayers } from './validate.js';

/** A weighted layer and the batch norm that directly and solely follows it (indices into the network). */
export interface BatchNormFold { layer: number; norm: number }

/** Which pairs a caller lets fold (a model format keeps those its file can express); default: all. */
export type FoldFilter = (layer: WeightedLayer, norm: BatchNormLayer) => boolean;

/** Every batch norm that is the only reader of a dense or convolution layer, with that layer, in layer order. */
export function batchNormFolds(net: Network, accept: FoldFilter = () => true): BatchNormFold[] {
  validateLayers(net);
  const graph = resolveGraph(net);
  const folds: BatchNormFold[] = [];
  net.forEach((layer, k) => {
    const next = graph.consumers[k];
    const norm = next.length === 1 ? net[next[0]] : undefined;
    if (isWeighted(layer) && norm?.kind === 'batch-norm' && accept(layer, norm)) folds.push({ layer: k, norm: next[0] });
  });
  return folds;
}

/**
 * Folds every batch norm that directly and solely follows a dense or convolution layer (and that
 * `accept` lets fold) into it, for inference models:
 *   W' = W * g,  b' = (b - mean) * g + beta,  g = gamma / sqrt(variance + epsilon).
 * Returns a new network (folded layers get new arrays; the others share theirs); later layers
 * that named the batch norm read the folded layer instead.
 */
export function foldBatchNorm(net: Network, accept?: FoldFilter): Network {
  const folds = new Map(batchNormFolds(net, accept).map((f) => [f.layer, f.norm]));
  const dropped = new Set(folds.values());
  const renamed = new Map<string, string>();
  const out: Layer[] = [];
  net.forEach((layer, k) => {
    if (dropped.has(k)) return;
    const bnIndex = folds.get(k);
    if (bnIndex === undefined || !isWeighted(layer)) {
      out.push(layer);
      return;
    }
    const norm = net[bnIndex] as BatchNormLayer;
    const name = layer.name ?? norm.name;
    if (norm.name !== undefined && name !== undefined && norm.name !== name) renamed.set(norm.name, name);
    out.push({ ...foldInto(layer, norm), name } as Layer);
  });
  return out.map((l) => (l.inputs ? { ...l, inputs: l.inputs.map((n) => renamed.get(n) ?? n) } : l) as Layer);
}

/** The layer with `norm` folded into new weight and bias arrays (its companions dropped: an inference model). */
function foldInto(layer: WeightedLayer, norm: BatchNormLayer): WeightedLayer {
  const units = outputUnits(layer);
  const eps = norm.epsilon ?? 1e-3;
  const g = Float64Array.from({ length: units }, (_, i) => (norm.gamma ? norm.gamma[i] : 1) / Math.sqrt(norm.variance[i] + eps));
  const unit = outputUnitOf(layer);
  const weight = Float32Array.from(layer.weight, (w, x) => w * g[unit(x)]);
  const bias = Float32Array.from({ length: units }, (_, i) => ((layer.bias ? layer.bias[i] : 0) - norm.mean[i]) * g[i] + (norm.beta ? norm.beta[i] : 0));
  const { companions: _dropped, ...rest } = layer;
  return { ...rest, weight, bias } as WeightedLayer;
}
