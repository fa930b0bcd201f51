/**
 * The ENorm network of a live tfjs layers model: its topology through the model-file reader, its
 * arrays tied to the model's variables, and momentum accumulators attached as companions.
 */
import * as tf from '@tensorflow/tfjs';
import { ENormError } from '../errors.js';
import { parseTfjsModel, type TfjsModel } from '../model-io/tfjs-format.js';
import type { Network } from '../network/layers.js';
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
    if (layer.kind !== 'dense' && layer.kind !== 'conv2d' && layer.kind !== 'depthwise-conv2d' && layer.kind !== 'batch-norm') continue;
    const owner = ownerOf(layer.name ?? '', names);
    const tensors = [layer.kind === 'batch-norm' ? layer.gamma : layer.weight, layer.kind === 'batch-norm' ? layer.beta : layer.bias];
    const untrained = tensors.some((t) => t !== undefined && variableOf.has(t) && !trainable.has(variableOf.get(t)!));
    if (owner !== undefined && shared.has(owner)) layer.frozen = SHARED;
    else if (untrained) layer.frozen = model.trainable ? 'trainable: false' : `trainable: false (model '${model.name}')`;
  }
}

/** The model's network (arrays zero-filled: values stay in the variables) and where each array lives. */
export function bindModel(model: tf.LayersModel, accumulators: Map<string, tf.Variable>, ownership: Ownership = ownershipOf(model)): BoundModel {
  checkConstraints(model, ownership);
  const weights = model.weights;
  const specs = weights.map((w) => ({ name: w.originalName, shape: w.shape as number[], dtype: w.dtype }));
  const bytes = specs.reduce((a, s) => a + 4 * s.shape.reduce((x, y) => x * y, 1), 0);
  const parsed: TfjsModel = parseTfjsModel(
    { format: 'layers-model', modelTopology: model.toJSON(null, false), weightsManifest: [{ paths: ['live'], weights: specs }] },
    new ArrayBuffer(bytes),
    { source: model.name },
  );
  const byName = new Map(parsed.weights.map((w) => [w.name, w]));
  const variableOf = new Map<Float32Array, ModelVariable>();
  const companions = new Map<Float32Array, Float32Array>();
  for (const w of weights) {
    const entry = byName.get(w.originalName);
    if (!entry || !(entry.data instanceof Float32Array)) continue;
    variableOf.set(entry.data, w);
    const acc = accumulators.get(w.name);
    if (acc) {
      const data = new Float32Array(entry.data.length);
      variableOf.set(data, acc);
      companions.set(entry.data, data);
    }
  }
  // Attach each accumulator to the layer tensor it belongs to.
  for (const layer of parsed.network) {
    const l = layer as unknown as Record<string, unknown> & { companions?: Record<string, Float32Array> };
    for (const role of ['weight', 'bias', 'gamma', 'beta'] as const) {
      const data = l[role];
      const m = data instanceof Float32Array ? companions.get(data) : undefined;
      if (m) l.companions = { ...(l.companions ?? {}), [role]: m };
    }
  }
  markFrozen(model, parsed.network, variableOf, ownership);
  return { network: parsed.network, variableOf };
}

/** The variable's current value as a tensor (a LayerVariable reads its tf.Variable; no copy). */
export const valueOf = (v: ModelVariable): tf.Variable => (v instanceof tf.Variable ? v : (v.read() as tf.Variable));

/** variable := value (through LayerVariable.write for model weights); the caller disposes value. */
export function assignTo(v: ModelVariable, value: tf.Tensor): void {
  if (v instanceof tf.Variable) v.assign(value);
  else v.write(value);
}
