/**
 * The cycle on the tfjs webgpu backend's own GPUDevice, with no weight readback. The checked
 * cycle itself is enorm/webgpu's DeviceStep; this file is only the shim over tfjs internals:
 * tfjs's device and command encoder, a variable's GPUBuffer, and fresh output tensors that
 * replace the variables' values once the status says every value is finite.
 */
import * as tf from '@tensorflow/tfjs';
import type { ENormOptions } from '../plan/options.js';
import { DeviceStep } from '../engine/webgpu/step.js';
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
  if (tf.getBackend() !== 'webgpu') {
    throw new ENormError('E_OPTION', `cycleOn 'webgpu' needs the tfjs webgpu backend; the active backend is '${tf.getBackend()}'`);
  }
  const b = tf.backend() as unknown as Partial<TfWebGPU>;
  const needs: (keyof TfWebGPU)[] = ['device', 'tensorMap', 'ensureCommandEncoderReady', 'endComputePassEncoder', 'submitQueue', 'uploadToGPU', 'makeTensorInfo'];
  const missing = needs.filter((k) => b[k] === undefined);
  if (missing.length) {
    throw new ENormError('E_DEVICE', `this @tensorflow/tfjs-backend-webgpu lacks ${missing.join(', ')}; enorm's GPU cycle supports 4.x (use cycleOn: 'wasm' to read weights back instead)`);
  }
  return b as TfWebGPU;
}

/** Whether a tfjs resource is a GPUBuffer (not a texture, not a host array): it has size, usage and mapAsync. */
function isGPUBuffer(r: unknown): r is GPUBuffer {
  const b = r as Partial<GPUBuffer> | null | undefined;
  return typeof b === 'object' && b !== null && typeof b.size === 'number' && typeof b.usage === 'number' && typeof b.mapAsync === 'function';
}

/** The GPU buffer of a tensor, uploading its values first if they are only on the host (allocating one if it has none). */
function bufferOf(tb: TfWebGPU, t: tf.Tensor): GPUBuffer {
  tb.uploadToGPU(t.dataId);
  const resource = tb.tensorMap.get(t.dataId)?.resource;
  if (!isGPUBuffer(resource)) {
    throw new ENormError('E_DEVICE', `tfjs's webgpu backend keeps tensor ${t.id} in ${describe(resource)}, not a GPUBuffer; use cycleOn: 'wasm' (for example with WEBGPU_USE_TEXTURE off)`);
  }
  return resource;
}

const describe = (r: unknown) => (r === null || r === undefined ? 'nothing' : typeof r === 'object' ? `a ${r.constructor?.name ?? 'object'}` : `a ${typeof r}`);

export class WebGPUStep {
  private constructor(private readonly step: DeviceStep<ModelVariable>) {}

  /** The device engine: its plan (no host arrays) and units. */
  get engine(): DeviceStep<ModelVariable>['engine'] {
    return this.step.engine;
  }

  static async create({ network, variableOf }: BoundModel, options: Omit<ENormOptions, 'backend'>): Promise<WebGPUStep> {
    const keyOf = (array: Float32Array) => variableOf.get(array)!;
    return new WebGPUStep(await DeviceStep.create(network, activeWebGPU().device, { ...options, keyOf }));
  }

  async run(): Promise<void> {
    const tb = activeWebGPU();
    const variables = this.step.slots.map((s) => s.key);
    const sources = variables.map((v) => bufferOf(tb, valueOf(v)));
    const results = variables.map((v) => tf.engine().makeTensorFromTensorInfo(tb.makeTensorInfo(v.shape as number[], 'float32')));
    try {
      const targets = results.map((r) => bufferOf(tb, r));
      // Into tfjs's own command encoder, after the work it has queued (the SGD step).
      tb.ensureCommandEncoderReady();
      tb.endComputePassEncoder();
      const pending = this.step.record(tb.commandEncoder!, sources, targets);
      tb.submitQueue();
      const status = await pending.status();
      if (!status.ok) throw status.error;
      variables.forEach((v, k) => assignTo(v, results[k]));
    } finally {
      for (const r of results) r.dispose();
    }
  }

  dispose(): void {
    this.step.destroy();
  }
}
