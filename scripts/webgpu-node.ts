/**
 * WebGPU in Node for the tests, benchmarks and examples: Dawn from the `webgpu` package, with
 * Debian's SwiftShader Vulkan driver when no GPU driver is configured.
 */
import { chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';

/** Debian's chromium-common ships SwiftShader, a CPU Vulkan driver Dawn accepts. */
const SWIFTSHADER = '/usr/lib/chromium/vk_swiftshader_icd.json';

/** Software rasterisers that expose WebGPU on the CPU. */
const SOFTWARE = /swiftshader|llvmpipe|lavapipe|software/i;

/** "vendor architecture description", for logs and result rows. */
export const describeAdapter = (info: GPUAdapterInfo | undefined) =>
  info ? `${info.vendor} ${info.architecture} ${info.description}`.replace(/\s+/g, ' ').trim() : 'unknown adapter';

export const isSoftwareAdapter = (info: GPUAdapterInfo) => SOFTWARE.test(`${info.vendor} ${info.architecture} ${info.device} ${info.description}`);

function ensureRuntimeDir(): void {
  if (!process.env.XDG_RUNTIME_DIR) {
    const dir = mkdtempSync(join(tmpdir(), 'xdg-'));
    chmodSync(dir, 0o700);
    process.env.XDG_RUNTIME_DIR = dir;
  }
}

/**
 * The system's hardware GPU adapter as Dawn sees it through the installed Vulkan drivers (or
 * VK_ICD_FILENAMES when set), or null when there is none or only a software one. Installs nothing.
 */
export async function probeHardwareAdapter(): Promise<GPUAdapterInfo | null> {
  ensureRuntimeDir();
  try {
    const { create } = await import('webgpu');
    const adapter = await create([]).requestAdapter({ powerPreference: 'high-performance' });
    return adapter && !isSoftwareAdapter(adapter.info) ? adapter.info : null;
  } catch {
    return null;
  }
}

/**
 * Installs Dawn (the `webgpu` package) as navigator.gpu and returns its adapter. Without
 * VK_ICD_FILENAMES it uses SwiftShader unless `hardware` is set. Throws with instructions when
 * there is no adapter: WebGPU tests fail, never skip.
 */
export async function gpuAdapter({ hardware = false } = {}): Promise<GPUAdapter> {
  if (!hardware) process.env.VK_ICD_FILENAMES ??= SWIFTSHADER;
  ensureRuntimeDir();
  if (!('gpu' in (globalThis.navigator ?? {}))) {
    const { create, globals } = await import('webgpu');
    Object.assign(globalThis, globals);
    Object.defineProperty(globalThis, 'navigator', { value: { gpu: create([]) }, writable: true, configurable: true });
  }
  const adapter = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) {
    throw new Error(
      `WebGPU is not available: Dawn found no adapter (VK_ICD_FILENAMES=${process.env.VK_ICD_FILENAMES}). ` +
        'Install a Vulkan driver and loader, e.g. `apt-get install chromium libvulkan1` (as .ci/run does).',
    );
  }
  return adapter;
}

/** Makes WebGPU available to tfjs in Node and switches tfjs to the webgpu backend. */
export async function useWebGPU(options: { hardware?: boolean } = {}): Promise<GPUAdapterInfo | undefined> {
  const adapter = await gpuAdapter(options);
  await import('@tensorflow/tfjs-backend-webgpu'); // registers 'webgpu'; needs navigator.gpu first
  if (!(await tf.setBackend('webgpu'))) throw new Error('tfjs could not initialise its webgpu backend');
  await tf.ready();
  return adapter.info;
}
