export { gpuAdapter, useWebGPU } from '../../scripts/webgpu-node.js';
import { gpuAdapter } from '../../scripts/webgpu-node.js';

/** A WebGPU device of its own (no tfjs). */
export async function gpuDevice(): Promise<GPUDevice> {
  const adapter = await gpuAdapter();
  const device = await adapter.requestDevice({
    requiredLimits: { maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize },
  });
  device.addEventListener('uncapturederror', (e) => { throw new Error(`WebGPU error: ${(e as GPUUncapturedErrorEvent).error.message}`); });
  return device;
}

/** Copies `bytes` bytes of a storage buffer back to the host (tests only). */
export async function readBuffer(device: GPUDevice, src: GPUBuffer, offset: number, bytes: number): Promise<ArrayBuffer> {
  const staging = device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const encoder = device.createCommandEncoder();
  encoder.copyBufferToBuffer(src, offset, staging, 0, bytes);
  device.queue.submit([encoder.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const out = staging.getMappedRange().slice(0);
  staging.unmap();
  staging.destroy();
  return out;
}

