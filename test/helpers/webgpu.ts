import { chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';

/** Debian's chromium-common ships SwiftShader, a CPU Vulkan driver Dawn accepts. */
const SWIFTSHADER = '/usr/lib/chromium/vk_swiftshader_icd.json';

/**
 * Installs Dawn (the `webgpu` package) as navigator.gpu and returns its adapter. Throws with
 * instructions when there is none: WebGPU tests fail, never skip.
 */
export async function gpuAdapter(): Promise<GPUAdapter> {
  process.env.VK_ICD_FILENAMES ??= SWIFTSHADER;
  if (!process.env.XDG_RUNTIME_DIR) {
    const dir = mkdtempSync(join(tmpdir(), 'xdg-'));
    chmodSync(dir, 0o700);
    process.env.XDG_RUNTIME_DIR = dir;
  }
  if (!('gpu' in (globalThis.navigator ?? {}))) {
    const { create, globals } = await import('webgpu');
    Object.assign(globalThis, globals);
    Object.defineProperty(globalThis, 'navigator', { value: { gpu: create([]) }, writable: true, configurable: true });
  }
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) {
    throw new Error(
      `WebGPU is not available: Dawn found no adapter (VK_ICD_FILENAMES=${process.env.VK_ICD_FILENAMES}). ` +
        'Install a Vulkan driver and loader, e.g. `apt-get install chromium libvulkan1` (as .ci/run does).',
    );
  }
  return adapter;
}

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

/** Makes WebGPU available to tfjs in Node and switches tfjs to the webgpu backend. */
export async function useWebGPU(): Promise<GPUAdapterInfo | undefined> {
  const adapter = await gpuAdapter();
  await import('@tensorflow/tfjs-backend-webgpu'); // registers 'webgpu'; needs navigator.gpu first
  if (!(await tf.setBackend('webgpu'))) throw new Error('tfjs could not initialise its webgpu backend');
  await tf.ready();
  return adapter.info;
}
