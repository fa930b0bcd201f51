/**
 * The ENorm network of a live tfjs layers model: its topology through the model-file reader, its
 * arrays tied to the model's variables, and momentum accumulators attached as companions.
 */
import * as tf from '@tensorflow/tfjs';
import { ENormError } from '../errors.js';
import { parseTfjsModel, type TfjsModel } from '../model-io/tfjs-format.js';
import type { Network } from '../network/layers.js';

/** A model weight or an optimizer accumulator. */
export type ModelVariable = tf.Variable | tf.LayerVariable;

export interface BoundModel {
  network: Network;
  /** The variable behind every array of `network` that enorm may rescale. */
  variableOf: Map<Float32Array, ModelVariable>;
}

/** Optimizers whose state transforms exactly under the rescaling (ENORM.md section 5). */
const SUPPORTED = new Set(['SGD', 'Momentum']);

/** Refuses layers whose constraints tfjs would re-apply after the rescaling. */
function checkConstraints(model: tf.LayersModel): void {
  for (const layer of model.layers) {
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

/** The model's network (arrays zero-filled: values stay in the variables) and where each array lives. */
export function bindModel(model: tf.LayersModel, accumulators: Map<string, tf.Variable>): BoundModel {
  checkConstraints(model);
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
  return { network: parsed.network, variableOf };
}

/** The variable's current value as a tensor (a LayerVariable reads its tf.Variable; no copy). */
export const valueOf = (v: ModelVariable): tf.Variable => (v instanceof tf.Variable ? v : (v.read() as tf.Variable));

/** variable := value (through LayerVariable.write for model weights); the caller disposes value. */
export function assignTo(v: ModelVariable, value: tf.Tensor): void {
  if (v instanceof tf.Variable) v.assign(value);
  else v.write(value);
}
