import { instantiate } from '@assemblyscript/loader';
import { ENormError } from '../../errors.js';
import { MAX_HOST_BYTES, type Backend, type Kernels } from '../backend.js';
import { align16, DISPOSE_HINT, disposedError, disposedKernels, formatBytes, memoryError, reason, reservationEnd } from '../memory.js';
import { simdSupported, wasmModule, type WasmKind } from './modules.js';

export { simdSupported };
export type { WasmKind };

/** The raw exports of assembly/index.ts (both builds export the same names). */
interface WasmExports extends Kernels {
  readonly memory: WebAssembly.Memory;
}

/** One instance of a build, with its own memory; `base` is where the host's allocations start. */
interface Instance {
  kind: WasmKind;
  exports: WasmExports;
  base: number;
}

const PAGE = 65536;

/**
 * Disposed instances wait here for the next backend of their kind: at most POOL_PER_KIND of each,
 * and at most POOL_BYTES of memory in all (a Wasm memory never shrinks, so a large one is left to
 * the garbage collector rather than kept alive).
 */
const POOL_PER_KIND = 4;
const POOL_BYTES = 64 * 2 ** 20;
const pool: Record<WasmKind, Instance[]> = { simd: [], scalar: [] };
let instantiated = 0;

/** For tests: instances created so far, and instances waiting in the pool. */
export function wasmPoolStats(): { instantiated: number; pooled: number } {
  return { instantiated, pooled: pool.simd.length + pool.scalar.length };
}

const pooledBytes = () => [...pool.simd, ...pool.scalar].reduce((a, i) => a + i.exports.memory.buffer.byteLength, 0);

/**
 * Of @assemblyscript/loader only `instantiate` is used, and its `instance`, not its `exports`:
 * - the module imports nothing (stub runtime, `abort=` disabled), so the env the loader supplies
 *   (abort, trace, seed) is never bound;
 * - its demangled wrappers take `...rest` arguments and so allocate on every call, and the kernels run
 *   per view per cycle; the raw exports are called instead;
 * - nothing needs lifting or lowering: every kernel argument is a number, and the pointers are byte
 *   offsets into the exported `memory`, above its static data, reserved by the host (see `bind`).
 */
async function instantiateBuild(kind: WasmKind): Promise<Instance> {
  const module = await wasmModule(kind);
  let instance: WebAssembly.Instance;
  try {
    ({ instance } = await instantiate<Record<string, unknown>>(module, {}));
  } catch (e) {
    // V8 throws RangeError when it cannot reserve another Wasm memory (about 12,800 live ones on 64-bit Linux).
    if (e instanceof RangeError) throw memoryError(`enorm: cannot create a WebAssembly instance for a new engine (${reason(e)}); ${DISPOSE_HINT}`);
    throw e;
  }
  instantiated++;
  const exports = instance.exports as unknown as WasmExports;
  // Allocate from the end of the initial memory upward: AS static data (pow tables) lies below it.
  return { kind, exports, base: align16(Math.max(exports.memory.buffer.byteLength, 16)) };
}

/** A backend on an instance of the simd or scalar build: a pooled one if any, else a fresh one. */
export async function createWasmBackend(kind: WasmKind): Promise<Backend> {
  if (kind !== 'simd' && kind !== 'scalar') {
    throw new ENormError('E_OPTION', `enorm: unknown WebAssembly build ${JSON.stringify(String(kind))}; use 'simd' or 'scalar'`);
  }
  if (kind === 'simd' && !simdSupported()) {
    throw new ENormError('E_OPTION', "enorm: this runtime does not support WebAssembly SIMD; use the 'scalar' or 'js' backend (or 'auto')");
  }
  return bind(pool[kind].pop() ?? (await instantiateBuild(kind)));
}

function bind(inst: Instance): Backend {
  const { exports: ex, base } = inst;
  const memory = ex.memory;
  let top = base;
  let live = true;
  const owner = `the '${inst.kind}' backend`;
  const dead = (): never => {
    throw disposedError(owner);
  };
  const raw: Kernels = {
    accumulate: ex.accumulate,
    scale: ex.scale,
    accumulateScaled: ex.accumulateScaled,
    scaleBoth: ex.scaleBoth,
    solve: ex.solve,
    energy: ex.energy,
    firstNonFinite: ex.firstNonFinite,
    zero: ex.zero,
    fill: ex.fill,
    copy: ex.copy,
  };
  let kernels = raw;

  return {
    name: inst.kind,
    get kernels(): Kernels {
      return kernels;
    },
    get buffer(): ArrayBuffer {
      return live ? memory.buffer : dead();
    },
    available(): number {
      return live ? MAX_HOST_BYTES - top : 0;
    },
    reserve(n: number): number {
      if (!live) dead();
      const ptr = top;
      const end = reservationEnd(top, n, inst.kind);
      const have = memory.buffer.byteLength;
      if (end > have) {
        try {
          memory.grow(Math.ceil((end - have) / PAGE));
        } catch (e) {
          throw memoryError(`enorm: cannot grow WebAssembly memory to ${formatBytes(end)} (${reason(e)}); ${DISPOSE_HINT}`);
        }
      }
      top = end;
      return ptr;
    },
    dispose(): void {
      if (!live) return;
      live = false;
      kernels = disposedKernels(owner);
      const bytes = memory.buffer.byteLength;
      if (pool[inst.kind].length < POOL_PER_KIND && pooledBytes() + bytes <= POOL_BYTES && detachViews(memory)) {
        // The next backend gets memory as a fresh instance has it: zero above the static data.
        ex.zero(base, top - base);
        pool[inst.kind].push(inst);
      }
    },
  };
}

/**
 * Detaches every view of the memory's current buffer: grow(0) replaces `memory.buffer` (in the
 * WebAssembly JS API every grow detaches the old buffer), so a Float32Array a caller kept
 * (engine.tensor(i)) can no longer read or write the memory of the next engine a pooled instance
 * serves. False when the runtime refuses the grow: then the instance is not pooled.
 */
function detachViews(memory: WebAssembly.Memory): boolean {
  try {
    memory.grow(0);
    return true;
  } catch {
    return false;
  }
}
