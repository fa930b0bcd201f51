import { ENormError, type ENormErrorDetails } from '../errors.js';
import { MAX_HOST_BYTES, type Kernels } from './backend.js';

/**
 * n rounded up to a multiple of 16, exact for every n < 2^53. Not (n + 15) & ~15: bitwise
 * operators work on 32-bit signed integers, so that form turns every size from 2^31 on negative.
 */
export const align16 = (n: number): number => Math.ceil(n / 16) * 16;

/** A byte count for messages: '4.00 GiB', '0.5 MiB'. */
export const formatBytes = (n: number): string => (n < 2 ** 30 ? `${(n / 2 ** 20).toFixed(1)} MiB` : `${(n / 2 ** 30).toFixed(2)} GiB`);

/** The fix for exhausted engine memory, quoted by every E_MEMORY about live engines. */
export const DISPOSE_HINT = 'every live engine holds its own memory: dispose() engines you no longer need (or create them with `using`)';

export function memoryError(message: string, details: ENormErrorDetails = {}): ENormError {
  return new ENormError('E_MEMORY', message, details);
}

/** E_STATE for anything used after dispose(). */
export const disposedError = (what: string): ENormError => new ENormError('E_STATE', `${what}: used after dispose() (or the end of its \`using\` block)`);

/**
 * Where a reservation of n bytes from `top` ends, or E_MEMORY (nothing reserved) when n is not a
 * byte count or the region would pass the 4 GiB that u32 pointers address.
 */
export function reservationEnd(top: number, n: number, backend: string): number {
  if (!Number.isSafeInteger(n) || n < 0) throw memoryError(`enorm: cannot reserve ${String(n)} bytes`);
  const end = top + align16(n);
  if (end > MAX_HOST_BYTES) {
    throw memoryError(`enorm: ${formatBytes(end)} of engine memory exceed the 4 GiB limit of the '${backend}' backend (${formatBytes(MAX_HOST_BYTES - top)} left)`);
  }
  return end;
}

/** The message of an error a runtime threw (a RangeError from WebAssembly.Memory, say), for our own message. */
export function reason(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * A kernel set whose every call throws E_STATE: what a disposed backend hands out, so that a caller
 * that kept a reference cannot write into memory another engine now uses.
 */
export function disposedKernels(owner: string): Kernels {
  const fail = (): never => {
    throw disposedError(`${owner}'s kernels`);
  };
  return {
    accumulate: fail,
    scale: fail,
    accumulateScaled: fail,
    scaleBoth: fail,
    solve: fail,
    energy: fail,
    firstNonFinite: fail,
    zero: fail,
    fill: fail,
    copy: fail,
  };
}

/**
 * Symbol.dispose where the runtime has it (Node 20, current browsers, Deno, Bun), else the
 * registry symbol that Node's own polyfill used; typed as Symbol.dispose so that TypeScript
 * accepts `using engine = await ENorm.create(...)`.
 */
export const disposeSymbol: typeof Symbol.dispose =
  (Symbol as { dispose?: typeof Symbol.dispose }).dispose ?? (Symbol.for('nodejs.dispose') as typeof Symbol.dispose);
