/**
 * The environment Dawn (the `webgpu` package) needs on Linux without a system Vulkan: the
 * SwiftShader folder from scripts/swiftshader.ts first on LD_LIBRARY_PATH, so that Dawn's
 * dlopen("libvulkan.so.1") finds the bundled loader. The dynamic linker reads LD_LIBRARY_PATH once,
 * when a process starts, so it is set for new processes: vitest's forked workers (through
 * scripts/webgpu-global-setup.ts) and scripts re-executed by relaunchWithWebGPU().
 *
 * The bundled libvulkan.so.1 is the generic Khronos loader: without VK_ICD_FILENAMES it still
 * finds the system's hardware drivers (/usr/share/vulkan/icd.d, /etc/vulkan/icd.d), so
 * probeHardwareAdapter() and gpuAdapter({ hardware: true }) keep seeing a real GPU.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { isMainThread } from 'node:worker_threads';
import { ensureSwiftShader, type SwiftShader } from './swiftshader.js';

/** Set in a prepared environment: SwiftShader's manifest, which gpuAdapter() selects by default. */
export const SWIFTSHADER_ICD_VAR = 'ENORM_SWIFTSHADER_ICD';
/** Set instead when the driver could not be prepared: why, for gpuAdapter()'s error message. */
export const SWIFTSHADER_ERROR_VAR = 'ENORM_SWIFTSHADER_ERROR';

type Env = Record<string, string | undefined>;

const FORWARDED = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

export interface WebGPUEnvironmentOptions {
  /**
   * Also set VK_ICD_FILENAMES to SwiftShader (unless VK_ICD_FILENAMES or VK_DRIVER_FILES is set
   * already): the tests, which should see one known adapter unless the user names a driver.
   */
  pinDriver?: boolean;
  platform?: NodeJS.Platform;
  arch?: string;
  prepare?: () => SwiftShader;
}

/** True when the user chose the Vulkan driver (VK_DRIVER_FILES is the loader's newer name). */
export const driverChosen = (env: Env) => Boolean(env.VK_ICD_FILENAMES || env.VK_DRIVER_FILES);

/**
 * The variables to add to `env` for a process that should get a WebGPU adapter. Empty where Dawn
 * needs no Vulkan (macOS: Metal, Windows: D3D12); `{ ENORM_SWIFTSHADER_ERROR }` where the driver
 * cannot be prepared. Never throws: a missing driver is reported by gpuAdapter(), in the WebGPU
 * suites only.
 */
export function webgpuEnvironment(env: Env = process.env, options: WebGPUEnvironmentOptions = {}): Record<string, string> {
  const { pinDriver = false, platform = process.platform, arch = process.arch, prepare = () => ensureSwiftShader() } = options;
  if (platform !== 'linux') return {};
  const added: Record<string, string> = {};
  let icd = env[SWIFTSHADER_ICD_VAR];
  if (!icd) {
    if (arch !== 'x64') {
      return { [SWIFTSHADER_ERROR_VAR]: `@sparticuz/chromium ships SwiftShader for linux-x64 only, not linux-${arch}` };
    }
    let driver: SwiftShader;
    try {
      driver = prepare();
    } catch (e) {
      return { [SWIFTSHADER_ERROR_VAR]: e instanceof Error ? e.message : String(e) };
    }
    icd = driver.icd;
    added.LD_LIBRARY_PATH = env.LD_LIBRARY_PATH ? `${driver.dir}:${env.LD_LIBRARY_PATH}` : driver.dir;
    added[SWIFTSHADER_ICD_VAR] = icd;
  }
  if (pinDriver && !driverChosen(env)) added.VK_ICD_FILENAMES = icd;
  return added;
}

/**
 * Re-executes this script (same Node flags, same arguments, stdio inherited) with the environment
 * of webgpuEnvironment() when it did not start with it, forwards SIGINT/SIGTERM/SIGHUP to it, and
 * exits with its status; the returned promise then never settles. Awaited when
 * scripts/webgpu-node.ts is first imported, before the importing script's body runs, so the
 * benches and examples work on a fresh machine with `npx tsx <file>`. Resolves at once inside
 * vitest (the global setup prepares the workers), in worker threads, in processes with an IPC
 * channel or without a script file, once prepared (no loop), or when preparing failed (the reason
 * is kept in ENORM_SWIFTSHADER_ERROR for gpuAdapter()'s message).
 */
export async function relaunchWithWebGPU(): Promise<void> {
  const script = process.argv[1];
  if (!isMainThread || process.env.VITEST || process.channel || !script || !existsSync(script)) return;
  if (process.env[SWIFTSHADER_ICD_VAR] || process.env[SWIFTSHADER_ERROR_VAR]) return;
  const added = webgpuEnvironment(process.env);
  if (!added.LD_LIBRARY_PATH) {
    Object.assign(process.env, added); // nothing a restart would change; keep the reason
    return;
  }
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, ...added },
  });
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  for (const signal of FORWARDED) process.on(signal, forward);
  const status = await new Promise<number>((resolve, reject) => {
    child.once('error', (e) => reject(new Error(`could not re-execute ${script} with the WebGPU environment: ${e.message}`)));
    // A child killed by signal n exits the way a shell reports it: 128 + n.
    child.once('exit', (code, signal) => resolve(code ?? 128 + (signal ? constants.signals[signal] : 0)));
  });
  process.exit(status);
}
