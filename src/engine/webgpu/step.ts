/**
 * One checked ENorm cycle on a WebGPU device, recorded into the caller's command encoder:
 *   copy every tensor and companion in -> the fresh schedule -> scan for NaN / Inf -> copy out
 * and, once the caller has submitted the encoder, a 4-byte status per tensor read back. Nothing
 * else crosses to the host: the weights stay on the device.
 */
import { ENorm } from '../enorm.js';
import { ENormError, layerError } from '../../errors.js';
import type { Network } from '../../network/layers.js';
import type { ENormOptions } from '../../plan/options.js';
import { prepare } from '../../plan/prepare.js';
import { tensorName } from '../layout.js';
import { nonFiniteError, overflowError } from '../tensor-errors.js';
import { WebGPUBackend } from './backend.js';

/** One array the step moves: a plan tensor (companion -1) or one of its companions. */
export interface DeviceSlot<K = undefined> {
  /** Plan tensor index, and -1 for the tensor itself or k for its companion k. */
  tensor: number;
  companion: number;
  /** Byte offset in the engine memory (`step.backend.memory`) and f32 element count. */
  ptr: number;
  length: number;
  layer: string;
  layerIndex: number;
  /** 'weight', 'bias', ..., or 'companion 0 of weight'. */
  name: string;
  /** What the caller's `keyOf` returned for this array (a tfjs variable, a GPUBuffer, ...). */
  key: K;
}

export interface DeviceStepOptions<K> extends Omit<ENormOptions, 'backend'> {
  /**
   * Called once per slot while the network's arrays are still at hand; the result is kept as
   * `slot.key`, the array is not kept. Use it to find your buffer for each slot.
   */
  keyOf?: (array: Float32Array, slot: DeviceSlot<undefined>) => K;
}

/** A cycle is ok, or the first slot that was not finite, as E_NONFINITE (input) or E_OVERFLOW (rescaling). */
export type DeviceStatus = { ok: true } | { ok: false; error: ENormError };

export interface PendingStep {
  /**
   * Resolves after the caller submitted the encoder that `record` wrote into. It does not throw for
   * a bad value (the error is in the status; the targets then hold the non-finite values, the sources
   * are unchanged), only E_DEVICE when the device is lost.
   */
  status(): Promise<DeviceStatus>;
}

interface Bad { slot: number; index: number }

export class DeviceStep<K = undefined> {
  /** Every array the step moves, in the order `record` takes its buffers. */
  readonly slots: readonly DeviceSlot<K>[];
  private pending = false;
  private destroyed = false;

  private constructor(
    /** The device engine: plan (with no host arrays), units, pointers. */
    readonly engine: ENorm,
    readonly backend: WebGPUBackend,
    slots: DeviceSlot<K>[],
  ) {
    this.slots = Object.freeze(slots);
  }

  /**
   * Plans `net` (throws ENormError as `ENorm.create`), compiles the WGSL kernels on `device`
   * (E_DEVICE if it rejects them) and reserves the engine memory. The step keeps no reference to
   * the network's arrays.
   */
  static async create<K = undefined>(net: Network, device: GPUDevice, options: DeviceStepOptions<K> = {}): Promise<DeviceStep<K>> {
    const { keyOf, ...engineOptions } = options;
    const prepared = prepare(net, engineOptions);
    const backend = await WebGPUBackend.create(device);
    const engine = ENorm.onDevicePrepared(prepared, backend);
    void backend.memory; // the device buffer now: E_MEMORY here, not at the first record
    const slots: DeviceSlot<K>[] = [];
    prepared.plan.tensors.forEach((t, i) => {
      [t.data, ...t.companions].forEach((array, j) => {
        const slot: DeviceSlot<undefined> = {
          tensor: i, companion: j - 1, ptr: engine.arrayPointers(i)[j], length: engine.lengths[i],
          layer: t.layer, layerIndex: t.layerIndex, name: tensorName(t, j), key: undefined,
        };
        slots.push({ ...slot, key: (keyOf ? keyOf(array, slot) : undefined) as K });
      });
    });
    return new DeviceStep(engine, backend, slots);
  }

  /**
   * Records one checked cycle into `encoder`: sources[k] -> slot k of engine memory, the cycle
   * (read-only), the pass that materialises its scales, the finiteness scan, slot k -> targets[k] (each from byte 0, 4 * length bytes). Submit the
   * encoder, then await `status()` before the next record; keep the sources unchanged until then
   * (they are scanned again on the error path, to tell E_NONFINITE from E_OVERFLOW).
   */
  record(encoder: GPUCommandEncoder, sources: readonly GPUBuffer[], targets: readonly GPUBuffer[]): PendingStep {
    if (this.destroyed) throw new ENormError('E_STATE', 'DeviceStep.record: used after destroy()');
    this.backend.checkDevice();
    if (this.pending) throw new ENormError('E_STATE', 'DeviceStep.record: the previous record\'s status() was not awaited');
    this.checkBuffers('sources', sources);
    this.checkBuffers('targets', targets);
    const { engine, backend } = this;
    this.copyIn(encoder, sources);
    engine.discardSums(); // new weights: every pending scale from 1
    engine.cycle();
    engine.materialise(); // the cycle only read the weights: one pass applies its scales
    const scans = this.scan(encoder);
    this.slots.forEach((s, k) => encoder.copyBufferToBuffer(backend.memory, s.ptr, targets[k], 0, 4 * s.length));
    this.pending = true;
    return { status: () => this.status(scans, sources) };
  }

  /** Frees the device buffers; the step cannot be used afterwards. */
  destroy(): void {
    this.destroyed = true;
    this.backend.destroy();
  }

  private async status(scans: number[], sources: readonly GPUBuffer[]): Promise<DeviceStatus> {
    try {
      const after = firstBad(scans, await this.backend.readStatus());
      if (!after) return { ok: true };
      return { ok: false, error: await this.diagnose(sources, after) };
    } finally {
      this.pending = false;
    }
  }

  /** An array came out non-finite. Only on this path are the inputs scanned too: a diverged input, or an overflow? */
  private async diagnose(sources: readonly GPUBuffer[], after: Bad): Promise<ENormError> {
    const { device } = this.backend;
    const encoder = device.createCommandEncoder({ label: 'enorm-diagnose' });
    this.copyIn(encoder, sources);
    const scans = this.scan(encoder);
    device.queue.submit([encoder.finish()]);
    const before = firstBad(scans, await this.backend.readStatus());
    const [make, { slot, index }] = before ? [nonFiniteError, before] : [overflowError, after];
    const s = this.slots[slot];
    return make(this.engine.plan.tensors[s.tensor], s.companion + 1, index);
  }

  private copyIn(encoder: GPUCommandEncoder, sources: readonly GPUBuffer[]): void {
    const memory = this.backend.memory;
    this.slots.forEach((s, k) => encoder.copyBufferToBuffer(sources[k], 0, memory, s.ptr, 4 * s.length));
  }

  /** A finiteness scan of every slot, encoded (with whatever the backend recorded before it). */
  private scan(encoder: GPUCommandEncoder): number[] {
    const scans = this.slots.map((s) => this.backend.scanFinite(s.ptr, s.length));
    this.backend.encode(encoder);
    return scans;
  }

  /** E_SHAPE unless there is one buffer per slot, each holding at least the slot's bytes. */
  private checkBuffers(what: string, buffers: readonly GPUBuffer[]): void {
    if (buffers.length !== this.slots.length) {
      throw new ENormError('E_SHAPE', `DeviceStep.record: ${this.slots.length} ${what} expected (one per slot), got ${buffers.length}`);
    }
    this.slots.forEach((s, k) => {
      if (buffers[k].size < 4 * s.length) {
        const message = `${s.name} needs ${4 * s.length} bytes; DeviceStep.record's ${what}[${k}] holds ${buffers[k].size}`;
        throw layerError('E_SHAPE', { layerIndex: s.layerIndex, layer: s.layer }, message, { tensor: s.name });
      }
    });
  }
}

/** The first slot whose scan found a NaN / Inf, and where; null when all are finite. */
function firstBad(scans: number[], status: Int32Array): Bad | null {
  const slot = scans.findIndex((s) => status[s] >= 0);
  return slot < 0 ? null : { slot, index: status[scans[slot]] };
}
