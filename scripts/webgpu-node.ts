/**
 * WebGPU in Node for the tests, benchmarks and examples: Dawn from the `webgpu` package, with the
 * SwiftShader Vulkan driver that the `@sparticuz/chromium` devDependency ships when no GPU driver
 * is chosen (scripts/swiftshader.ts, scripts/webgpu-env.ts).
 *
 * Importing this module on Linux re-executes a script that did not start with the driver's
 * environment (LD_LIBRARY_PATH is read only at process start): see relaunchWithWebGPU().
 */
import { chmodSync, existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { driverChosen, relaunchWithWebGPU, SWIFTSHADER_ERROR_VAR, SWIFTSHADER_ICD_VAR } from './webgpu-env.js';

await relaunchWithWebGPU();

/** Debian's chromium-common ships SwiftShader too: used when the bundled one is not prepared. */
const DEBIAN_SWIFTSHADER = '/usr/lib/chromium/vk_swiftshader_icd.json';

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

/** SwiftShader's manifest: the prepared (bundled) one, else Debian's where installed. */
function softwareDriver(): string | undefined {
  return process.env[SWIFTSHADER_ICD_VAR] || (existsSync(DEBIAN_SWIFTSHADER) ? DEBIAN_SWIFTSHADER : undefined);
}

/** Why Dawn found no adapter, and what to do, in one line. */
function noAdapterMessage(): string {
  const env = process.env;
  const seen = `VK_ICD_FILENAMES=${env.VK_ICD_FILENAMES ?? '(unset)'}, VK_DRIVER_FILES=${env.VK_DRIVER_FILES ?? '(unset)'}, LD_LIBRARY_PATH=${env.LD_LIBRARY_PATH ?? '(unset)'}`;
  const cause = env[SWIFTSHADER_ERROR_VAR]
    ? `The bundled SwiftShader driver could not be prepared: ${env[SWIFTSHADER_ERROR_VAR]}.`
    : env[SWIFTSHADER_ICD_VAR]
      ? 'The Vulkan driver named above did not give an adapter.'
      : 'This process did not start with the SwiftShader environment (vitest.config.ts sets it for the test workers; scripts importing scripts/webgpu-node.ts re-execute with it).';
  return (
    `WebGPU is not available: Dawn found no adapter (${seen}). ${cause} ` +
    'Fix: run `npm ci` (it installs @sparticuz/chromium, whose SwiftShader is unpacked into node_modules/.cache/enorm-swiftshader), ' +
    'or install a Vulkan loader and driver (e.g. Debian `apt-get install libvulkan1 mesa-vulkan-drivers`) and point VK_ICD_FILENAMES at the driver\'s manifest.'
  );
}

/**
 * Installs Dawn (the `webgpu` package) as navigator.gpu and returns its adapter. Unless the user
 * chose a driver (VK_ICD_FILENAMES or VK_DRIVER_FILES) or `hardware` is set, it selects
 * SwiftShader. Throws with instructions when there is no adapter: WebGPU tests fail, never skip.
 */
export async function gpuAdapter({ hardware = false } = {}): Promise<GPUAdapter> {
  if (!hardware && !driverChosen(process.env)) {
    const driver = softwareDriver();
    if (driver) process.env.VK_ICD_FILENAMES = driver; // read by the Vulkan loader when Dawn creates its instance
  }
  ensureRuntimeDir();
  if (!('gpu' in (globalThis.navigator ?? {}))) {
    const { create, globals } = await import('webgpu');
    Object.assign(globalThis, globals);
    Object.defineProperty(globalThis, 'navigator', { value: { gpu: create([]) }, writable: true, configurable: true });
  }
  const adapter = await navigator.gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new Error(noAdapterMessage());
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
