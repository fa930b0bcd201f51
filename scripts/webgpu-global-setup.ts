/**
 * vitest globalSetup (vitest.config.ts): runs once in the main vitest process before any worker
 * starts. The forked workers are spawned with a copy of this process's environment, so the
 * variables set here are in place when their dynamic linker starts (LD_LIBRARY_PATH only works
 * that way). Unpacks the bundled SwiftShader on first use; pins VK_ICD_FILENAMES to it unless the
 * user chose a driver (VK_ICD_FILENAMES / VK_DRIVER_FILES: a real GPU). A driver that cannot be
 * prepared fails the WebGPU suites with the reason (ENORM_SWIFTSHADER_ERROR), not the whole run.
 */
import { webgpuEnvironment } from './webgpu-env.js';

export default function setup(): void {
  Object.assign(process.env, webgpuEnvironment(process.env, { pinDriver: true }));
}
