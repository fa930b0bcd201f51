/**
 * The cycle in the package's Wasm kernels, for tfjs backends whose tensors the host can read
 * (cpu, wasm): values come in with data() and go back with assign. They are written straight into
 * the engine's resident tensors (no network-array copy, no upload): one copy in, a read-only
 * cycle, one materialising pass with the finiteness check fused into it, one copy out.
 */
import * as tf from '@tensorflow/tfjs';
import { ENorm } from '../engine/enorm.js';
import { ENormError } from '../errors.js';
import type { ENormOptions } from '../plan/options.js';
import { nonFiniteError } from '../engine/tensor-errors.js';
import { assignTo, valueOf, type BoundModel, type ModelVariable } from './model.js';

interface Slot {
  variable: ModelVariable;
  /** Plan tensor, and 0 for its data or j + 1 for companion j. */
  tensor: number;
  j: number;
}

export class HostStep {
  private constructor(
    readonly engine: ENorm,
    /** The plan's arrays (tensors and companions) with their variables: nothing else can change. */
    private readonly slots: Slot[],
  ) {}

  static async create({ network, variableOf }: BoundModel, options: Omit<ENormOptions, 'backend'>): Promise<HostStep> {
    const engine = await ENorm.create(network, { ...options, backend: 'auto' });
    const slots = engine.plan.tensors.flatMap((t, tensor) => [t.data, ...t.companions].map((data, j) => ({ variable: variableOf.get(data)!, tensor, j })));
    return new HostStep(engine, slots);
  }

  private view({ tensor, j }: Slot): Float32Array {
    return j === 0 ? this.engine.tensor(tensor) : this.engine.companion(tensor, j - 1);
  }

  /** One ENorm cycle on the variables; E_NONFINITE or E_OVERFLOW before any variable is assigned. */
  async run(): Promise<void> {
    // data(), not dataSync(): some backends can only read back asynchronously.
    const values = (await Promise.all(this.slots.map((s) => valueOf(s.variable).data()))) as Float32Array[];
    const { engine } = this;
    this.slots.forEach((s, k) => {
      const n = engine.lengths[s.tensor];
      if (values[k].length !== n) {
        const t = engine.plan.tensors[s.tensor];
        throw new ENormError('E_SHAPE', `layer '${t.layer}' ${t.role}: its variable now holds ${values[k].length} values, the engine was laid out for ${n}`, { layerIndex: t.layerIndex, layer: t.layer, tensor: t.role });
      }
    });
    this.slots.forEach((s, k) => this.view(s).set(values[k]));
    engine.discardSums();
    engine.cycle();
    try {
      engine.materialise();
    } catch (e) {
      // A NaN / Inf in what the training step left is E_NONFINITE, not an overflow of the cycle.
      if (e instanceof ENormError && e.code === 'E_OVERFLOW') this.checkInputs(values);
      throw e;
    }
    for (const s of this.slots) {
      // A copy: a tfjs tensor may keep the array it is made from, and engine memory is reused.
      const value = tf.tensor(this.view(s).slice(), s.variable.shape as number[], 'float32');
      assignTo(s.variable, value);
      value.dispose();
    }
  }

  private checkInputs(values: Float32Array[]): void {
    this.slots.forEach((s, k) => {
      const bad = values[k].findIndex((x) => !Number.isFinite(x));
      if (bad >= 0) throw nonFiniteError(this.engine.plan.tensors[s.tensor], s.j, bad, values[k][bad]);
    });
  }

  /** Frees the engine's Wasm memory (back to the instance pool). */
  dispose(): void {
    this.engine.dispose();
  }
}
