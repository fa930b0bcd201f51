/**
 * What of a live tfjs model enorm may change (docs/ALGORITHM.md section 7, "Ownership"): layers that another
 * model also runs, or that are not trainable, are frozen barriers; a disposed model or optimizer
 * state is refused before anything is read.
 */
import * as tf from '@tensorflow/tfjs';
import { ENormError } from '../errors.js';

type TfLayer = tf.SymbolicTensor['sourceLayer'];
type TfNode = TfLayer['inboundNodes'][number];

/** The `frozen` reason of a layer that another model also runs. */
export const SHARED = 'shared with another model';

/**
 * The nodes (layer calls) of the model's own graph, walked back from its outputs: what its
 * predictions run. A layer called in another graph has further inbound nodes; a layer whose output
 * another graph reads has further outbound nodes.
 */
function ownNodes(model: tf.LayersModel): Set<TfNode> {
  const nodes = new Set<TfNode>();
  const stack: [TfLayer, number][] = model.outputs.map((t) => [t.sourceLayer, t.nodeIndex]);
  for (let next = stack.pop(); next; next = stack.pop()) {
    const node = next[0].inboundNodes[next[1]];
    if (!node || nodes.has(node)) continue;
    nodes.add(node);
    node.inboundLayers.forEach((layer, i) => stack.push([layer, node.nodeIndices[i]]));
  }
  return nodes;
}

/**
 * Names of the model's layers that another model also runs, so that rescaling them would change
 * that model's predictions (and leave its optimizer state behind):
 * - a layer called in another graph too (B built from A's layer objects): more inbound nodes than
 *   A's graph holds;
 * - a layer whose output another graph reads (B = tf.sequential({ layers: [A.layers[0], ...] }), or a
 *   head applied to A's symbolic tensors), and everything upstream of it, which that graph runs too;
 * - every layer when the model itself is called as a layer of another model.
 * tfjs never removes a call from a layer, so a layer stays shared after the other model is disposed.
 * A model whose outputs are A's own symbolic tensors, with no layer of its own, leaves no trace on
 * A's layers and cannot be seen.
 */
export function sharedLayers(model: tf.LayersModel): Set<string> {
  const own = ownNodes(model);
  const shared = new Set<string>();
  if (model.inboundNodes.length > 1) {
    for (const layer of model.layers) shared.add(layer.name);
    return shared;
  }
  const upstream: TfNode[] = [];
  for (const layer of model.layers) {
    if (layer.inboundNodes.some((n) => !own.has(n))) shared.add(layer.name);
    if (layer.outboundNodes.some((n) => !own.has(n))) upstream.push(...layer.inboundNodes.filter((n) => own.has(n)));
  }
  const seen = new Set<TfNode>();
  for (let node = upstream.pop(); node; node = upstream.pop()) {
    if (seen.has(node)) continue;
    seen.add(node);
    shared.add(node.outboundLayer.name);
    node.inboundLayers.forEach((layer, i) => {
      const parent = layer.inboundNodes[node.nodeIndices[i]];
      if (parent) upstream.push(parent);
    });
  }
  return shared;
}

/** True when the variable's memory is gone (model.dispose(), optimizer.dispose(), tf.dispose). */
function isDisposed(v: tf.Variable | tf.LayerVariable): boolean {
  if (v instanceof tf.Variable) return v.isDisposed;
  try {
    return v.read().isDisposed;
  } catch {
    return true; // LayerVariable.read() throws once its value is disposed
  }
}

/**
 * E_STATE when the model or any of its weights or optimizer accumulators has been disposed, so
 * that enormStep refuses before it reads or writes anything (instead of failing halfway in tfjs).
 */
export function checkNotDisposed(model: tf.LayersModel, accumulators: Map<string, tf.Variable>): void {
  // A Container's reference count starts at 1 and model.dispose() takes it to 0.
  if ((model as unknown as { _refCount?: number | null })._refCount === 0) {
    throw new ENormError('E_STATE', `model '${model.name}' is disposed; enormStep needs a live model`);
  }
  const weight = model.weights.find(isDisposed);
  if (weight) {
    throw new ENormError('E_STATE', `model '${model.name}': weight '${weight.originalName}' is disposed; enormStep needs a live model`, { tensor: weight.originalName });
  }
  for (const [name, v] of accumulators) {
    if (isDisposed(v)) throw new ENormError('E_STATE', `model '${model.name}': the optimizer's momentum of '${name}' is disposed; pass a live optimizer`, { tensor: name });
  }
}
