/**
 * The cycle on the tfjs webgpu backend's own GPUDevice, with no weight readback: the variables'
 * buffers are copied into the engine memory, the WGSL kernels run, and the results are copied into
 * fresh tensors that replace the variables' values. Only a finiteness status (4 bytes per tensor)
 * comes back to the host, so a non-finite value is reported before any variable changes.
 */
import * as tf from '@tensorflow/tfjs';
import { ENorm, nonFiniteError, overflowError } from '../engine/enorm.js';
import type { ENormOptions } from '../plan/options.js';
import { WebGPUBackend } from '../engine/webgpu/backend.js';
import { ENormError } from '../errors.js';
import { assignTo, valueOf, type BoundModel, type ModelVariable } from './model.js';

/** The parts of @tensorflow/tfjs-backend-webgpu's WebGPUBackend (4.x) this file uses. */
interface TfWebGPU {
  device: GPUDevice;
  tensorMap: { get(dataId: object): { resource?: unknown } | undefined };
  commandEncoder: GPUCommandEncoder | null;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
  uploadToGPU(dataId: object): void;
  makeTensorInfo(shape: number[], dtype: 'float32'): tf.TensorInfo;
}

/** tfjs's active webgpu backend, checked for the internals this path needs. */
export function activeWebGPU(): TfWebGPU {
  const b = tf.backend() as unknown as Partial<TfWebGPU>;
  const needs: (keyof TfWebGPU)[] = ['device', 'tensorMap', 'ensureCommandEncoderReady', 'endComputePassEncoder', 'submitQueue', 'uploadToGPU', 'makeTensorInfo'];
  const missing = tf.getBackend() === 'webgpu' ? needs.filter((k) => b[k] === undefined) : needs;
  if (missing.length) {
    throw new ENormError('E_OPTION', tf.getBackend() === 'webgpu'
      ? `this @tensorflow/tfjs-backend-webgpu lacks ${missing.join(', ')}; enorm's GPU cycle supports 4.x (use cycleOn: 'wasm' to read weights back instead)`
      : `cycleOn 'webgpu' needs the tfjs webgpu backend; the active backend is '${tf.getBackend()}'`);
  }
  return b as TfWebGPU;
}

/** The GPU buffer of a tensor, uploading its values first if they are only on the host (allocating one if it has none). */
function bufferOf(tb: TfWebGPU, t: tf.Tensor): GPUBuffer {
  tb.uploadToGPU(t.dataId);
  return tb.tensorMap.get(t.dataId)!.resource as GPUBuffer;
}

interface Item {
  variable: ModelVariable;
  /** Byte pointer in engine memory and f32 count. */
  ptr: number;
  n: number;
  /** Plan tensor and 0 (the tensor) or 1 + companion index, for error messages. */
  tensor: number;
  j: number;
}

interface Bad { item: number; index: number }

/** The first item whose scan slot found a NaN / Inf, and where; null when all are finite. */
function firstBad(slots: number[], status: Int32Array): Bad | null {
  const item = slots.findIndex((s) => status[s] >= 0);
  return item < 0 ? null : { item, index: status[slots[item]] };
}

export class WebGPUStep {
  private constructor(
    readonly engine: ENorm,
    private readonly gpu: WebGPUBackend,
    private readonly items: Item[],
  ) {}

  static async create({ network, variableOf }: BoundModel, options: Omit<ENormOptions, 'backend'>): Promise<WebGPUStep> {
    const gpu = await WebGPUBackend.create(activeWebGPU().device);
    const engine = ENorm.onDevice(network, gpu, options);
    const items: Item[] = [];
    engine.plan.tensors.forEach((t, i) => {
      engine.arrayPointers(i).forEach((ptr, j) => {
        const data = j === 0 ? t.data : t.companions[j - 1];
        items.push({ variable: variableOf.get(data)!, ptr, n: data.length, tensor: i, j });
      });
    });
    return new WebGPUStep(engine, gpu, items);
  }

  async run(): Promise<void> {
    const tb = activeWebGPU();
    const { engine, gpu, items } = this;
    const sources = items.map(({ variable }) => bufferOf(tb, valueOf(variable)));
    const results = items.map((it) => tf.engine().makeTensorFromTensorInfo(tb.makeTensorInfo(it.variable.shape as number[], 'float32')));
    try {
      const targets = results.map((r) => bufferOf(tb, r));
      // Into tfjs's own command encoder, after the work it has queued (the SGD step).
      const encoder = this.encoderAfterTfjs(tb);
      this.copyIn(encoder, sources);
      engine.discardSums();
      engine.cycle();
      const slots = items.map((it) => gpu.scanFinite(it.ptr, it.n));
      gpu.encode(encoder);
      items.forEach((it, k) => encoder.copyBufferToBuffer(gpu.memory, it.ptr, targets[k], 0, 4 * it.n));
      tb.submitQueue();
      const bad = firstBad(slots, await gpu.readStatus());
      if (bad) throw await this.diagnose(tb, sources, bad);
      items.forEach((it, k) => assignTo(it.variable, results[k]));
    } finally {
      for (const r of results) r.dispose();
    }
  }

  dispose(): void {
    this.gpu.destroy();
  }

  private encoderAfterTfjs(tb: TfWebGPU): GPUCommandEncoder {
    tb.ensureCommandEncoderReady();
    tb.endComputePassEncoder();
    return tb.commandEncoder!;
  }

  private copyIn(encoder: GPUCommandEncoder, sources: GPUBuffer[]): void {
    this.items.forEach((it, k) => encoder.copyBufferToBuffer(sources[k], 0, this.gpu.memory, it.ptr, 4 * it.n));
  }

  /**
   * An item came out of the cycle non-finite. Only on this error path are the inputs (unchanged:
   * nothing was assigned) scanned too, to tell a diverged SGD step from an overflow.
   */
  private async diagnose(tb: TfWebGPU, sources: GPUBuffer[], after: Bad): Promise<Error> {
    const { engine, gpu, items } = this;
    const encoder = this.encoderAfterTfjs(tb);
    this.copyIn(encoder, sources);
    const slots = items.map((it) => gpu.scanFinite(it.ptr, it.n));
    gpu.encode(encoder);
    tb.submitQueue();
    const before = firstBad(slots, await gpu.readStatus());
    const [make, { item, index }] = before ? [nonFiniteError, before] : [overflowError, after];
    return make(engine.plan.tensors[items[item].tensor], items[item].j, index);
  }
}
