/**
 * The shared topology/layer mapper: a tfjs modelTopology (from a model.json or a live model's
 * toJSON()) and a source of weights become an enorm network. The source says what each weight is
 * (name, shape, dtype) and hands over the Float32Array a layer holds, so the file reader passes its
 * decoded shards and the live adapter (src/tfjs/model.ts) allocates only the arrays layers use,
 * with the optimizer's momentum accumulators as companions.
 */
import type { ENormErrorCode } from '../../errors.js';
import { isAffineNorm, isWeighted, type Layer, type Network } from '../../network/layers.js';
import { clean, fail, isObject, quote, shapeText, type Json } from '../shared.js';
import { LAYERS, layerLabel, type LayerCtx } from './layers.js';
import { batchShape, inputLayer, readInbound, readLayerEntry, topoSort, unwrapTopology, type LayerEntry, type TopoLayer } from './topology.js';

/** What the mapper needs of one weight. */
export interface WeightInfo {
  name: string;
  shape: readonly number[];
  dtype: string;
}

export interface WeightSource {
  /** The weight named `${layer}/${suffix}`, or undefined when the model has none. */
  info(name: string): WeightInfo | undefined;
  /** Its values, called once its dtype (float32) and shape are checked: the array the layer will hold. */
  data(name: string): Float32Array;
  /**
   * The array that moves inversely to the weight (its momentum accumulator: weight*d means
   * companion/d), or undefined; asked after data(), once per array that has one. A file has none.
   */
  companion?(name: string): Float32Array | undefined;
  /** The code of a weight that is not float32: E_MODEL (default) for a corrupt file, E_TYPE for a live model's tensor. */
  readonly dtypeError?: Extract<ENormErrorCode, 'E_MODEL' | 'E_TYPE'>;
}

export interface MappedModel {
  network: Network;
  /** Per-example shape of the (first) model input, from batch_input_shape; -1 where a dimension is open. */
  inputShape: number[];
}

/** The layer list in evaluation order, with the model's input and output layer names. */
function orderLayers(src: string, className: string, config: unknown, entries: LayerEntry[], names: Set<string>): { topo: TopoLayer[]; inputNames: string[]; outputNames: string[] } {
  if (className === 'Sequential') {
    const first = entries[0];
    if (first.className !== 'InputLayer') {
      const batch = batchShape(src, first.name, first.config);
      if (!batch) fail('E_MODEL', `${src}: the first layer ${quote(first.name)} has no batch_input_shape, so the model's input shape is unknown`, first.name);
      let inName = `${first.name}_input`;
      while (names.has(inName)) inName += '_';
      entries.unshift({ name: inName, className: 'InputLayer', config: { batch_input_shape: batch }, raw: {} });
    }
    const topo = entries.map((e, i) => ({ name: e.name, className: e.className, config: e.config, inbound: i === 0 ? [] : [entries[i - 1].name] }));
    return { topo, inputNames: [entries[0].name], outputNames: [entries[entries.length - 1].name] };
  }
  const topo = topoSort(src, entries.map((e) => ({ name: e.name, className: e.className, config: e.config, inbound: readInbound(src, e) })));
  const cfg = isObject(config) ? config : {};
  const refs = (key: string) => (Array.isArray(cfg[key]) ? (cfg[key] as unknown[]) : []).map((r) => (Array.isArray(r) ? r[0] : r)).filter((r): r is string => typeof r === 'string');
  let inputNames = refs('input_layers');
  if (inputNames.length === 0) inputNames = topo.filter((l) => l.className === 'InputLayer').map((l) => l.name);
  return { topo, inputNames, outputNames: refs('output_layers') };
}

/** Sets the companions of a weighted layer's tensors that have one (`companionOf` maps a tensor to it). */
function attachCompanions(layer: Layer, companionOf: ReadonlyMap<Float32Array, Float32Array>): void {
  const of = (t: Float32Array | undefined) => (t === undefined ? undefined : companionOf.get(t));
  if (isWeighted(layer)) {
    const [weight, bias] = [of(layer.weight), of(layer.bias)];
    if (weight || bias) layer.companions = { ...(weight && { weight }), ...(bias && { bias }) };
  } else if (isAffineNorm(layer)) {
    const [gamma, beta] = [of(layer.gamma), of(layer.beta)];
    if (gamma || beta) layer.companions = { ...(gamma && { gamma }), ...(beta && { beta }) };
  }
}

/**
 * Maps a modelTopology to enorm layers, in evaluation order. Throws E_MODEL for a malformed or
 * inconsistent topology, E_LAYER_KIND for a layer enorm cannot represent; `src` starts every message.
 */
export function mapTopology(src: string, topology: Json, weights: WeightSource): MappedModel {
  const { className, config } = unwrapTopology(src, topology);
  const rawLayers = Array.isArray(config) ? config : isObject(config) ? config.layers : undefined;
  if (!Array.isArray(rawLayers) || rawLayers.length === 0) fail('E_MODEL', `${src}: modelTopology lists no layers`);
  const entries = rawLayers.map((raw, i) => readLayerEntry(src, raw, i));
  const names = new Set<string>();
  for (const e of entries) {
    if (names.has(e.name)) fail('E_MODEL', `${src}: two layers are named ${quote(e.name)}`, e.name);
    names.add(e.name);
  }
  const sequential = className === 'Sequential';
  const { topo, inputNames, outputNames } = orderLayers(src, className, config, entries, names);

  const network: Network = [];
  const outName = new Map<string, string>(); // tfjs layer -> enorm layer that carries its output
  const rank = new Map<string, number>();
  const enormNames = new Set<string>();
  const inputShapes = new Map<string, number[]>();
  const companionOf = new Map<Float32Array, Float32Array>();

  for (const l of topo) {
    let layers: Layer[];
    const label = layerLabel(src, l.name, l.className);
    if (l.className === 'InputLayer') {
      if (l.inbound.length > 0) fail('E_MODEL', `${src}: input layer ${quote(l.name)} reads other layers`, l.name);
      const batch = batchShape(src, l.name, l.config);
      if (!batch) fail('E_MODEL', `${src}: input layer ${quote(l.name)} has no batch_input_shape`, l.name);
      inputShapes.set(l.name, batch.slice(1).map((d) => d ?? -1));
      rank.set(l.name, batch.length);
      layers = [inputLayer(l.name, batch)];
    } else {
      const spec = LAYERS.get(l.className);
      if (!spec) fail('E_LAYER_KIND', `${src}: layer ${quote(l.name)} has class ${clean(l.className)}, which enorm cannot rescale`, l.name);
      if (l.inbound.length === 0) fail('E_MODEL', `${label} reads nothing`, l.name);
      const inputRanks = l.inbound.map((r) => rank.get(r) ?? 0);
      if (spec.inRank !== undefined && inputRanks.some((r) => r !== spec.inRank)) {
        fail('E_LAYER_KIND', `${label} reads a rank-${inputRanks[0]} tensor; enorm supports it on rank-${spec.inRank} inputs only`, l.name);
      }
      const weightFor = (suffix: string) => {
        const full = `${l.name}/${suffix}`;
        const w = weights.info(full);
        if (!w) fail('E_MODEL', `${label} needs weight ${quote(full)}, which the weights manifest does not list`, l.name);
        return w;
      };
      const ctx: LayerCtx = {
        src, name: l.name, className: l.className, label, config: l.config, inputRanks,
        weightShape: (suffix) => weightFor(suffix).shape,
        weight(suffix, shape) {
          const w = weightFor(suffix);
          if (w.dtype !== 'float32') fail(weights.dtypeError ?? 'E_MODEL', `${src}: weight ${quote(w.name)} has dtype ${w.dtype}; enorm rescales float32 weights only`, l.name);
          if (w.shape.length !== shape.length || shape.some((d, i) => d !== null && d !== w.shape[i])) {
            fail('E_MODEL', `${src}: weight ${quote(w.name)} has shape ${shapeText(w.shape)}, expected ${shapeText(shape)} for layer ${quote(l.name)} (${clean(l.className)})`, l.name);
          }
          const data = weights.data(w.name);
          const companion = companionOf.has(data) ? undefined : weights.companion?.(w.name); // one per array
          if (companion !== undefined) companionOf.set(data, companion);
          return data;
        },
        unsupported(what) {
          return fail('E_LAYER_KIND', `${label}: unsupported ${what}`, l.name);
        },
      };
      layers = spec.convert(ctx);
      if (layers.length === 0) fail('E_LAYER_KIND', `${label} maps to no enorm layer`, l.name);
      const head = layers[0];
      const reads = l.inbound.map((r) => outName.get(r) as string);
      if (head.kind === 'add' || head.kind === 'concat') {
        if (reads.length < 2) fail('E_MODEL', `${label} merges ${reads.length} input(s); it needs at least two`, l.name);
        head.inputs = reads;
      } else {
        if (reads.length !== 1) fail('E_MODEL', `${label} reads ${reads.length} inputs; it takes exactly one`, l.name);
        if (!sequential) head.inputs = reads;
      }
      rank.set(l.name, spec.outRank ?? inputRanks[0]);
    }
    for (const layer of layers) {
      attachCompanions(layer, companionOf);
      const n = layer.name as string;
      if (enormNames.has(n)) fail('E_MODEL', `${src}: the derived layer name ${quote(n)} clashes with another layer's`, l.name);
      enormNames.add(n);
      network.push(layer);
    }
    outName.set(l.name, layers[layers.length - 1].name as string);
  }

  // enorm treats the layers nothing reads as the outputs; a tfjs output that feeds other
  // layers would be taken for a hidden layer and rescaled, so refuse it. One pass over the
  // edges, not one per output.
  const firstReader = new Map<string, string>();
  for (const layer of network) for (const input of layer.inputs ?? []) if (!firstReader.has(input)) firstReader.set(input, layer.name as string);
  for (const o of outputNames) {
    const n = outName.get(o);
    if (n === undefined) fail('E_MODEL', `${src}: output layer ${quote(o)} is not a layer of the model`);
    const reader = firstReader.get(n);
    if (reader !== undefined) {
      fail('E_MODEL', `${src}: output layer ${quote(o)} also feeds layer ${quote(reader)}; enorm cannot keep an intermediate output fixed`, o);
    }
  }
  const inputShape = inputShapes.get(inputNames[0]) ?? inputShapes.values().next().value;
  if (inputShape === undefined) fail('E_MODEL', `${src}: the model has no input layer`);

  return { network, inputShape };
}
