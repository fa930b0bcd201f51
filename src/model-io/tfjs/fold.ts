/**
 * Batch-norm folding for tfjs layers models (`--fold-bn`): every BatchNormalization that directly
 * and solely follows a Dense, Conv2D, DepthwiseConv2D or SeparableConv2D (with a linear activation,
 * so nothing lies between them) leaves the model. The topology changes (the BN's entry is removed,
 * its readers and the model's outputs read the layer before it, which gets use_bias: true), the
 * manifest loses the BN's weights and gains `<layer>/bias` where the layer had none, and the
 * network is network/fold.ts's folded one, whose new arrays are the weights the writer saves.
 */
import { batchNormFolds, foldBatchNorm, type FoldFilter } from '../../network/fold.js';
import type { BatchNormLayer, WeightedLayer } from '../../network/layers.js';
import { fail, isObject, quote, shapeText, type Json } from '../shared.js';
import type { TfjsWeight } from './codec.js';
import type { TfjsModel } from './index.js';
import { readLayerEntry, type LayerEntry } from './topology.js';

/** The tfjs classes whose kernel a following batch norm folds into (their bias is `<layer>/bias`). */
const FOLDABLE = new Set(['Dense', 'Conv2D', 'DepthwiseConv2D', 'SeparableConv2D']);

/** The model with its batch norms folded (a new model: the topology is a copy, the input is not changed). */
export function foldTfjsBatchNorm(model: TfjsModel, src = 'model.json'): TfjsModel {
  const topology = structuredClone(model.topology);
  const list = layerList(src, topology);
  const entries = new Map<string, LayerEntry>(list.map((raw, i) => {
    const e = readLayerEntry(src, raw, i);
    return [e.name, e];
  }));
  const accept: FoldFilter = (layer, norm) => FOLDABLE.has(entries.get(layer.name ?? '')?.className ?? '')
    && entries.get(norm.name ?? '')?.className === 'BatchNormalization';
  const folds = batchNormFolds(model.network, accept).map((f) => ({
    layer: model.network[f.layer] as WeightedLayer, norm: model.network[f.norm] as BatchNormLayer,
  }));
  if (folds.length === 0) return model;
  const network = foldBatchNorm(model.network, accept);
  const foldedByName = new Map(network.map((l) => [l.name, l]));
  const weights = [...model.weights];
  for (const { layer, norm } of folds) {
    const folded = foldedByName.get(layer.name) as WeightedLayer;
    replaceKernel(src, weights, layer, folded);
    dropNorm(weights, norm);
    rewire(list, entries, layer.name as string, norm.name as string);
    (entries.get(layer.name as string) as LayerEntry).config.use_bias = true;
  }
  renameOutputs(topology, new Map(folds.map((f) => [f.norm.name as string, f.layer.name as string])));
  const removed = new Set(folds.map((f) => f.norm.name));
  const kept = list.filter((raw) => !removed.has(readName(raw)));
  list.splice(0, list.length, ...kept);
  return { ...model, network, topology, weights };
}

/** The array of layer entries inside a (copied) topology: Sequential's config or config.layers. */
function layerList(src: string, topology: Json): Json[] {
  const t = isObject(topology.model_config) ? topology.model_config : topology;
  const config = t.config;
  const list = Array.isArray(config) ? config : isObject(config) ? config.layers : undefined;
  if (!Array.isArray(list)) fail('E_MODEL', `${src}: modelTopology lists no layers`);
  return list as Json[];
}

const readName = (raw: Json): string => (typeof raw.name === 'string' ? raw.name : (raw.config as Json).name as string);

/** The folded kernel and bias replace the layer's manifest entries; a layer without a bias gets `<layer>/bias` after its kernel. */
function replaceKernel(src: string, weights: TfjsWeight[], layer: WeightedLayer, folded: WeightedLayer): void {
  const at = (data: Float32Array | undefined) => (data === undefined ? -1 : weights.findIndex((w) => w.data === data));
  const kernel = at(layer.weight);
  weights[kernel] = { ...weights[kernel], data: folded.weight };
  const bias = folded.bias as Float32Array;
  const own = at(layer.bias);
  if (own >= 0) {
    weights[own] = { ...weights[own], data: bias };
    return;
  }
  const name = `${layer.name}/bias`;
  const unused = weights.findIndex((w) => w.name === name); // listed, though use_bias was false
  const entry: TfjsWeight = { name, shape: [bias.length], dtype: 'float32', data: bias };
  if (weights[kernel].group !== undefined) entry.group = weights[kernel].group;
  if (unused < 0) weights.splice(kernel + 1, 0, entry);
  else if (weights[unused].dtype !== 'float32' || weights[unused].shape.length !== 1 || weights[unused].shape[0] !== bias.length) {
    fail('E_MODEL', `${src}: weight ${quote(name)} has shape ${shapeText(weights[unused].shape)}, expected [${bias.length}] to take the folded bias`, layer.name);
  } else weights[unused] = { ...weights[unused], data: bias };
}

/** The batch norm's weights (gamma, beta, moving mean and variance: the arrays its layer holds) leave the manifest. */
function dropNorm(weights: TfjsWeight[], norm: BatchNormLayer): void {
  const arrays = new Set<unknown>([norm.gamma, norm.beta, norm.mean, norm.variance]);
  for (let i = weights.length - 1; i >= 0; i--) if (arrays.has(weights[i].data)) weights.splice(i, 1);
}

/** Functional models: every inbound reference to the batch norm now names the layer it followed. */
function rewire(list: Json[], entries: Map<string, LayerEntry>, layer: string, norm: string): void {
  for (const raw of list) {
    const nodes = entries.get(readName(raw))?.raw.inbound_nodes;
    if (!Array.isArray(nodes)) continue;
    for (const node of nodes) {
      if (!Array.isArray(node)) continue;
      for (const ref of node) if (Array.isArray(ref) && ref[0] === norm) ref[0] = layer;
    }
  }
}

/** A functional model's output_layers that named a folded batch norm name the layer it followed. */
function renameOutputs(topology: Json, renamed: Map<string, string>): void {
  const t = isObject(topology.model_config) ? topology.model_config : topology;
  const outputs = isObject(t.config) ? t.config.output_layers : undefined;
  if (!Array.isArray(outputs)) return;
  for (const ref of outputs) if (Array.isArray(ref) && typeof ref[0] === 'string') ref[0] = renamed.get(ref[0]) ?? ref[0];
}
