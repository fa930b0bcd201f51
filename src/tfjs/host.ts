/**
 * The cycle in the package's Wasm kernels, for tfjs backends whose tensors the host can read
 * (cpu, wasm): values come in with data() and go back with assign.
 */
import * as tf from '@tensorflow/tfjs';
import { ENorm } from '../engine/enorm.js';
import type { ENormOptions } from '../plan/options.js';
import { assignTo, valueOf, type BoundModel, type ModelVariable } from './model.js';

export class HostStep {
  private constructor(
    readonly engine: ENorm,
    /** The plan's arrays (tensors and companions) with their variables: nothing else can change. */
    private readonly slots: { variable: ModelVariable; data: Float32Array }[],
  ) {}

  static async create({ network, variableOf }: BoundModel, options: Omit<ENormOptions, 'backend'>): Promise<HostStep> {
    const engine = await ENorm.create(network, { ...options, backend: 'auto' });
    const arrays = engine.plan.tensors.flatMap((t) => [t.data, ...t.companions]);
    return new HostStep(engine, arrays.map((data) => ({ variable: variableOf.get(data)!, data })));
  }

  async run(): Promise<void> {
    // data(), not dataSync(): some backends can only read back asynchronously.
    const values = await Promise.all(this.slots.map((s) => valueOf(s.variable).data()));
    this.slots.forEach((s, i) => s.data.set(values[i] as Float32Array));
    this.engine.step(); // throws E_NONFINITE or E_OVERFLOW before writing anything
    for (const s of this.slots) {
      const value = tf.tensor(s.data, s.variable.shape as number[], 'float32');
      assignTo(s.variable, value);
      value.dispose();
    }
  }

  /** Frees the engine's Wasm memory (back to the instance pool). */
  dispose(): void {
    this.engine.dispose();
  }
}
