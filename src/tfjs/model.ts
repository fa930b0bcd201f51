/**
 * The ENorm network of a live tfjs layers model: its topology and weights through the shared
 * topology mapper (no byte codec, no copy of the values), its arrays tied to the model's variables,
 * and momentum accumulators attached as companions.
 */
import * as tf from '@tensorflow/tfjs';
import { ENormError } from '../errors.js';
import { isObject, product, quote } from '../model-io/shared.js';
import { checkJsonDepth } from '../model-io/text.js';
import { mapTopology, type WeightSource } from '../model-io/tfjs/mapper.js';
import { isAffineNorm, isWeighted, type Network } from '../network/layers.js';
import { SHARED, sharedLayers } from './ownership.js';

/** A model weight or an optimizer accumulator. */
export type ModelVariable = tf.Variable | tf.LayerVariable;

export interface BoundModel {
  network: Network;
  /** The variable behind every array of `network` that enorm may rescale. */
  variableOf: Map<Float32Array, ModelVariable>;
}

/** Optimizers whose state transforms exactly under the rescaling (docs/ALGORITHM.md section 5). */
const SUPPORTED = new Set(['SGD', 'Momentum']);

/**
 * Refuses layers whose constraints tfjs would re-apply after the rescaling. A frozen layer (shared,
 * or with nothing trainable) is never rescaled, so its constraints are left to tfjs.
 */
function checkConstraints(model: tf.LayersModel, { shared }: Ownership): void {
  for (const layer of model.layers) {
    if (shared.has(layer.name) || layer.trainableWeights.length === 0) continue;
    const config = layer.getConfig() as Record<string, unknown>;
    for (const [key, value] of Object.entries(config)) {
      if (key.endsWith('Constraint') && value !== null && value !== undefined) {
        throw new ENormError('E_LAYER_KIND', `layer '${layer.name}' has a ${key}; tfjs would re-apply it after rescaling and change the function, so enorm refuses it`, { layer: layer.name });
      }
    }
  }
}

/** Momentum accumulators by the name of their variable ('<weight>/momentum'). */
export async function accumulatorsOf(optimizer: tf.Optimizer): Promise<Map<string, tf.Variable>> {
  const kind = optimizer.getClassName();
  if (!SUPPORTED.has(kind)) {
    throw new ENormError('E_OPTION', `optimizer ${kind} keeps per-weight second moments that have no exact transformation under ENorm's rescaling; use tf.train.sgd or tf.train.momentum (Nesterov included)`);
  }
  const found = new Map<string, tf.Variable>();
  if (kind === 'Momentum') {
    for (const { name, tensor } of await optimizer.getWeights()) {
      if (name.endsWith('/momentum') && tensor instanceof tf.Variable) found.set(name.slice(0, -'/momentum'.length), tensor);
      else if (!(tensor instanceof tf.Variable)) tensor.dispose(); // getWeights makes a fresh 'iter' scalar each call
    }
  }
  return found;
}

/** What the model's owner allows enorm to change (ownership.ts). */
export interface Ownership {
  /** tfjs layer names that another model also runs. */
  shared: Set<string>;
  /** model.trainableWeights: what fit trains. */
  trainable: Set<ModelVariable>;
}

export const ownershipOf = (model: tf.LayersModel): Ownership => ({ shared: sharedLayers(model), trainable: new Set(model.trainableWeights) });

/** The tfjs layer a network layer comes from: its own name, or the name before a '/part' the reader adds ('dense_1/relu', 'sep/depthwise'). */
function ownerOf(name: string, layers: Set<string>): string | undefined {
  for (let n = name; ; n = n.slice(0, n.lastIndexOf('/'))) {
    if (layers.has(n)) return n;
    if (!n.includes('/')) return undefined;
  }
}

/**
 * Marks the network's weighted layers enorm must not change as `frozen` (a barrier in the plan): a
 * layer another model runs, or one with a tensor that fit does not train (layer.trainable = false,
 * or model.trainable = false).
 */
function markFrozen(model: tf.LayersModel, network: BoundModel['network'], variableOf: BoundModel['variableOf'], { shared, trainable }: Ownership): void {
  const names = new Set(model.layers.map((l) => l.name));
  for (const layer of network) {
    // Kernel layers own weight and bias; the norms (batch-norm, layer-norm) own gamma and beta.
    if (!isWeighted(layer) && !isAffineNorm(layer)) continue;
    const tensors = isWeighted(layer) ? [layer.weight, layer.bias] : [layer.gamma, layer.beta];
    const owner = ownerOf(layer.name ?? '', names);
    const untrained = tensors.some((t) => t !== undefined && variableOf.has(t) && !trainable.has(variableOf.get(t)!));
    if (owner !== undefined && shared.has(owner)) layer.frozen = SHARED;
    else if (untrained) layer.frozen = model.trainable ? 'trainable: false' : `trainable: false (model '${model.name}')`;
  }
}

/** The model's weights by the name a saved model.json gives them (`${layer}/${suffix}`); E_MODEL if two share one. */
function weightsByName(model: tf.LayersModel): Map<string, tf.LayerVariable> {
  const byName = new Map<string, tf.LayerVariable>();
  for (const w of model.weights) {
    if (byName.has(w.originalName)) throw new ENormError('E_MODEL', `${model.name}: weight ${quote(w.originalName)} appears twice in the model's weights`, { tensor: w.originalName });
    byName.set(w.originalName, w);
  }
  return byName;
}

/**
 * The live model's weights as the mapper's source. Each array a layer holds is allocated here, once,
 * zero-filled (the values stay in the variables: the host path stages them in, the GPU path never
 * reads it), and tied to its variable; so is the array of its momentum accumulator.
 */
function liveWeights(model: tf.LayersModel, accumulators: Map<string, tf.Variable>): { source: WeightSource; variableOf: Map<Float32Array, ModelVariable> } {
  const byName = weightsByName(model);
  const variableOf = new Map<Float32Array, ModelVariable>();
  const arrays = new Map<string, Float32Array>();
  const staged = (v: ModelVariable) => {
    const data = new Float32Array(product(v.shape as number[])); // a variable's shape is always concrete
    variableOf.set(data, v);
    return data;
  };
  const source: WeightSource = {
    dtypeError: 'E_TYPE',
    info(name) {
      const w = byName.get(name);
      return w && { name, shape: w.shape as number[], dtype: w.dtype };
    },
    data(name) {
      let data = arrays.get(name);
      if (!data) arrays.set(name, (data = staged(byName.get(name)!)));
      return data;
    },
    companion(name) {
      const acc = accumulators.get(byName.get(name)!.name); // the optimizer names its state by the variable's own name
      return acc && staged(acc);
    },
  };
  return { source, variableOf };
}

/**
 * The model's network, read from its live topology (model.toJSON) and weights (model.weights) through
 * the model-file mapper, with each array tied to its variable and each momentum accumulator attached
 * as its weight's companion. The arrays are zero-filled: values stay in the variables.
 */
export function bindModel(model: tf.LayersModel, accumulators: Map<string, tf.Variable>, ownership: Ownership = ownershipOf(model)): BoundModel {
  checkConstraints(model, ownership);
  const topology = model.toJSON(null, false);
  if (!isObject(topology)) throw new ENormError('E_MODEL', `${model.name}: toJSON() gave no topology object`);
  checkJsonDepth(model.name, topology); // as for a file: the mapper then reads a bounded tree
  const { source, variableOf } = liveWeights(model, accumulators);
  const { network } = mapTopology(model.name, topology, source);
  markFrozen(model, network, variableOf, ownership);
  return { network, variableOf };
}

/** The variable's current value as a tensor (a LayerVariable reads its tf.Variable; no copy). */
export const valueOf = (v: ModelVariable): tf.Variable => (v instanceof tf.Variable ? v : (v.read() as tf.Variable));

/** variable := value (through LayerVariable.write for model weights); the caller disposes value. */
export function assignTo(v: ModelVariable, value: tf.Tensor): void {
  if (v instanceof tf.Variable) v.assign(value);
  else v.write(value);
}
