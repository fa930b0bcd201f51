/**
 * enorm/tfjs: one ENorm cycle after every SGD step for TensorFlow.js layers models.
 *
 *   await enormStep(model, { optimizer, c: 1.2 });
 *   model.fit(x, y, { callbacks: [new ENormCallback({ c: 1.2 })] });
 *
 * On cpu and wasm the cycle runs in the package's Wasm kernels (host.ts); on webgpu it runs in WGSL
 * on tfjs's own device with no weight readback (webgpu.ts). Momentum accumulators move inversely
 * to their weights.
 */
import * as tf from '@tensorflow/tfjs';
import type { ENormOptions } from '../plan/options.js';
import type { Barrier } from '../plan/ir.js';
import { ENormError } from '../errors.js';
import { prepare } from '../plan/prepare.js';
import { HostStep } from './host.js';
import { accumulatorsOf, bindModel, ownershipOf, type Ownership } from './model.js';
import { checkNotDisposed } from './ownership.js';
import { activeWebGPU, WebGPUStep } from './webgpu.js';

/** Where the cycle runs: 'auto' is 'webgpu' on the tfjs webgpu backend and 'wasm' elsewhere. */
export type CycleOn = 'auto' | 'wasm' | 'webgpu';

export interface ENormStepOptions extends Omit<ENormOptions, 'backend'> {
  /** The optimizer whose state moves with the weights. Default: model.optimizer. */
  optimizer?: tf.Optimizer;
  /** Default 'auto'. 'wasm' on webgpu reads the weights back to the host each step. */
  cycleOn?: CycleOn;
}

/** What enormStep balances on this model (the same object while the plan is reused). */
export interface ENormStepInfo {
  cycleOn: 'wasm' | 'webgpu';
  /** Groups of units sharing a scale, and the units in them. */
  groups: number;
  units: number;
  /** Units left at scale 1, and why (activations that are not positively homogeneous, BN without gamma, ...). */
  barriers: readonly Barrier[];
}

interface Binding {
  step: HostStep | WebGPUStep;
  info: ENormStepInfo;
  /** What the plan was built for: rebuilt when the model, optimizer state, backend or options change. */
  key: string;
}

const bindings = new WeakMap<tf.LayersModel, Binding>();

function resolveCycleOn(cycleOn: CycleOn | undefined): 'wasm' | 'webgpu' {
  const on = cycleOn ?? 'auto';
  if (on !== 'auto' && on !== 'wasm' && on !== 'webgpu') throw new ENormError('E_OPTION', `cycleOn must be 'auto', 'wasm' or 'webgpu', got ${JSON.stringify(String(on))}`);
  return on === 'auto' ? (tf.getBackend() === 'webgpu' ? 'webgpu' : 'wasm') : on;
}

/** What a step on this model needs, checked before anything is read or written. */
interface Request {
  on: 'wasm' | 'webgpu';
  rest: Omit<ENormStepOptions, 'optimizer' | 'cycleOn'>;
  accumulators: Map<string, tf.Variable>;
  ownership: Ownership;
  key: string;
}

/**
 * Checks the options, the optimizer (E_OPTION for Adam, RMSProp, Adagrad) and that nothing is
 * disposed (E_STATE), and collects what the plan depends on: the model's weights, the optimizer's
 * accumulators, which layers are trainable and which another model shares, the backend and options.
 */
async function request(model: tf.LayersModel, options: ENormStepOptions): Promise<Request> {
  const { optimizer = model.optimizer, cycleOn, ...rest } = options;
  if (!optimizer) throw new ENormError('E_OPTION', `model '${model.name}' has no optimizer: pass { optimizer } or compile the model`);
  const on = resolveCycleOn(cycleOn);
  const accumulators = await accumulatorsOf(optimizer);
  checkNotDisposed(model, accumulators);
  const ownership = ownershipOf(model);
  const trainable = model.weights.map((w) => (ownership.trainable.has(w) ? 1 : 0)).join('');
  const key = JSON.stringify([model.weights.length, [...accumulators.values()].map((v) => v.id), trainable, [...ownership.shared].sort(), tf.getBackend(), on, rest]);
  return { on, rest, accumulators, ownership, key };
}

/**
 * One ENorm cycle on the model's weights, in place, with the optimizer's momentum moved inversely.
 * Layers that another model also runs, or that are not trainable, are frozen: their weights are not
 * touched and the units around them keep scale 1 (listed in `barriers`). The plan is built on the
 * first call and reused while the model, its trainable flags and sharing, the optimizer state, the
 * tfjs backend and the options stay the same. On any error no variable is changed.
 */
export async function enormStep(model: tf.LayersModel, options: ENormStepOptions = {}): Promise<ENormStepInfo> {
  const { on, rest, accumulators, ownership, key } = await request(model, options);
  let binding = bindings.get(model);
  if (!binding || binding.key !== key) {
    // The bound model is not kept: the step holds what it needs (the GPU step, only the variables).
    const bound = bindModel(model, accumulators, ownership);
    const step = on === 'webgpu' ? await WebGPUStep.create(bound, rest) : await HostStep.create(bound, rest);
    binding?.step.dispose();
    const { plan, units } = step.engine;
    binding = { step, key, info: Object.freeze({ cycleOn: on, groups: plan.groups.length, units, barriers: Object.freeze([...plan.barriers]) }) };
    bindings.set(model, binding);
  }
  await binding.step.run();
  return binding.info;
}

/**
 * Runs enormStep after every batch of model.fit, with the model's own optimizer. Everything that
 * would refuse the step (an Adam, RMSProp or Adagrad optimizer, a layer or option enorm cannot
 * handle, a disposed model) is checked when training begins, so fit rejects before its first
 * batch changes any weight.
 */
export class ENormCallback extends tf.Callback {
  private readonly options: ENormStepOptions;
  constructor(options: ENormStepOptions = {}) {
    super();
    this.options = options;
  }
  override async onTrainBegin(): Promise<void> {
    const { on, rest, accumulators, ownership } = await request(this.model, this.options);
    if (on === 'webgpu') activeWebGPU(); // the tfjs webgpu internals the GPU cycle needs
    // Reads only: option, layer, graph and width errors now, not after a batch.
    prepare(bindModel(this.model, accumulators, ownership).network, rest);
  }
  override async onBatchEnd(): Promise<void> {
    await enormStep(this.model, this.options);
  }
}
