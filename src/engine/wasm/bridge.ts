import { instantiate } from '@assemblyscript/loader';
import type { Backend, Kernels } from '../backend.js';
import { simdSupported, wasmModule, type WasmKind } from './modules.js';

export { simdSupported };
export type { WasmKind };

/** The raw exports of assembly/index.ts (both builds export the same names). */
interface WasmExports extends Kernels {
  readonly memory: WebAssembly.Memory;
}

const PAGE = 65536;
/** wasm32 linear memory cannot exceed 4 GiB. */
const MAX_BYTES = 65536 * PAGE;

const align16 = (n: number): number => Math.ceil(n / 16) * 16;

/** A fresh instance of the simd or scalar build, with its own memory. */
export async function createWasmBackend(kind: WasmKind): Promise<Backend> {
  if (kind !== 'simd' && kind !== 'scalar') throw new Error(`enorm: unknown WebAssembly build '${String(kind)}'`);
  if (kind === 'simd' && !simdSupported()) {
    throw new Error(
      "enorm: this runtime does not support WebAssembly SIMD; use the 'scalar' or 'js' backend (or 'auto')",
    );
  }
  const module = await wasmModule(kind);
  // The module imports nothing (stub runtime, abort disabled); the loader's default env is ignored.
  const { instance } = await instantiate<Record<string, unknown>>(module, {});
  // Raw exports: the loader's demangled wrappers take ...rest args and would allocate per call.
  const ex = instance.exports as unknown as WasmExports;
  const memory = ex.memory;

  // Allocate from the end of the initial memory upward: AS static data (pow tables) lies below it.
  let top = align16(Math.max(memory.buffer.byteLength, 16));

  const kernels: Kernels = {
    accumulate: ex.accumulate,
    scale: ex.scale,
    scaleAccumulate: ex.scaleAccumulate,
    solveScales: ex.solveScales,
    energy: ex.energy,
    firstNonFinite: ex.firstNonFinite,
    zero: ex.zero,
  };

  return {
    name: kind,
    kernels,
    get buffer(): ArrayBuffer {
      return memory.buffer;
    },
    reserve(n: number): number {
      if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`enorm: cannot reserve ${n} bytes`);
      const ptr = top;
      const end = ptr + align16(n);
      if (end > MAX_BYTES) {
        throw new RangeError(`enorm: ${end} bytes exceed the 4 GiB WebAssembly memory limit`);
      }
      const have = memory.buffer.byteLength;
      if (end > have) {
        try {
          memory.grow(Math.ceil((end - have) / PAGE));
        } catch (e) {
          throw new RangeError(
            `enorm: cannot grow WebAssembly memory to ${end} bytes: ${e instanceof Error ? e.message : String(e)}`,
          );
        }
      }
      top = end;
      return ptr;
    },
  };
}
