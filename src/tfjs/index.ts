/**
 * enorm/tfjs: one ENorm cycle after every SGD step for TensorFlow.js layers models.
 *
 *   await enormStep(model, { optimizer, c: 1.2 });
 *   model.fit(x, y, { callbacks: [new ENormCallback({ c: 1.2 })] });
 *
 * The cycle runs in the package's Wasm kernels on the model's values (read with data() and
 * written back with assign); momentum accumulators move inversely to their weights.
 */
import * as tf from '@tensorflow/tfjs';
import { ENorm } from '../engine/enorm.js';
import type { ENormOptions } from '../engine/options.js';
import { ENormError } from '../errors.js';
import { parseTfjsModel, type TfjsModel } from '../model-io/tfjs-format.js';

export interface ENormStepOptions extends Omit<ENormOptions, 'backend'> {
  /** The optimizer whose state moves with the weights. Default: model.optimizer. */
  optimizer?: tf.Optimizer;
}

/** Optimizers whose state transforms exactly under the rescaling (ENORM.md section 5). */
const SUPPORTED = new Set(['SGD', 'Momentum']);

/** One model's plan, kept between steps. */
interface Binding {
  engine: ENorm;
  /** Model weights and momentum accumulators, each with the array the engine reads and writes. */
  slots: { variable: tf.Variable | tf.LayerVariable; data: Float32Array; shape: number[] }[];
  /** Weight count and accumulator ids the plan was built with: rebuilt when the optimizer creates new state. */
  key: string;
}

const bindings = new WeakMap<tf.LayersModel, Binding>();

function fail(message: string): never {
  throw new ENormError('E_OPTION', message);
}

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
async function accumulatorsOf(optimizer: tf.Optimizer): Promise<Map<string, tf.Variable>> {
  const kind = optimizer.getClassName();
  if (!SUPPORTED.has(kind)) {
    fail(`optimizer ${kind} keeps per-weight second moments that have no exact transformation under ENorm's rescaling; use tf.train.sgd or tf.train.momentum (Nesterov included)`);
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

async function bind(model: tf.LayersModel, accumulators: Map<string, tf.Variable>, options: ENormStepOptions): Promise<Binding> {
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
  const slots: Binding['slots'] = [];
  const companions = new Map<Float32Array, Float32Array>();
  for (const w of weights) {
    const entry = byName.get(w.originalName);
    if (!entry || !(entry.data instanceof Float32Array)) continue;
    slots.push({ variable: w, data: entry.data, shape: w.shape as number[] });
    const acc = accumulators.get(w.name);
    if (acc) {
      const data = new Float32Array(entry.data.length);
      slots.push({ variable: acc, data, shape: acc.shape });
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
  const engine = await ENorm.create(parsed.network, { ...options, backend: 'auto' });
  // Only tensors in the plan can change (BN moving statistics, for one, never do).
  const moved = new Set(engine.plan.tensors.flatMap((t) => [t.data, ...t.companions]));
  return { engine, slots: slots.filter((s) => moved.has(s.data)), key: keyOf(model, accumulators) };
}

const keyOf = (model: tf.LayersModel, acc: Map<string, tf.Variable>) => `${model.weights.length}:${[...acc.values()].map((v) => v.id).join(',')}`;

/**
 * One ENorm cycle on the model's weights, in place, with the optimizer's momentum moved inversely.
 * The plan is built on the first call and reused while the model and optimizer state keep their shape.
 */
export async function enormStep(model: tf.LayersModel, options: ENormStepOptions = {}): Promise<void> {
  const { optimizer = model.optimizer, ...rest } = options;
  if (!optimizer) fail(`model '${model.name}' has no optimizer: pass { optimizer } or compile the model`);
  const accumulators = await accumulatorsOf(optimizer);
  let binding = bindings.get(model);
  if (!binding || binding.key !== keyOf(model, accumulators)) {
    binding = await bind(model, accumulators, rest);
    bindings.set(model, binding);
  }
  // data(), not dataSync(): webgpu can only read back asynchronously (in Node it has no OffscreenCanvas).
  const values = await Promise.all(binding.slots.map((s) => (s.variable instanceof tf.Variable ? s.variable : s.variable.read()).data()));
  binding.slots.forEach((s, i) => s.data.set(values[i] as Float32Array));
  binding.engine.step();
  for (const s of binding.slots) {
    const value = tf.tensor(s.data, s.shape, 'float32');
    if (s.variable instanceof tf.Variable) s.variable.assign(value);
    else s.variable.write(value);
    value.dispose();
  }
}

/** Runs enormStep after every batch of model.fit, with the model's own optimizer. */
export class ENormCallback extends tf.Callback {
  private readonly options: ENormStepOptions;
  constructor(options: ENormStepOptions = {}) {
    super();
    this.options = options;
  }
  override async onBatchEnd(): Promise<void> {
    await enormStep(this.model, this.options);
  }
}
