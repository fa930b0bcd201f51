// Backend memory for kernel tests: one arena per backend, byte-wise copies in and out.
import type { Backend, BackendName } from '../../src/engine/backend.js';
import { createJsBackend } from '../../src/engine/js-backend.js';
import { createWasmBackend } from '../../src/engine/wasm/bridge.js';

const ARENA = 1 << 22;

export function make(kind: BackendName): Promise<Backend> {
  return kind === 'js' ? Promise.resolve(createJsBackend()) : createWasmBackend(kind);
}

/** Byte-wise copies in and out of backend memory, so any pointer alignment works. */
export class Mem {
  readonly base: number;
  constructor(readonly b: Backend) {
    this.base = b.reserve(ARENA);
  }
  private bytes(ptr: number, n: number): Uint8Array {
    return new Uint8Array(this.b.buffer, ptr, n);
  }
  put(ptr: number, a: Float32Array | Float64Array): void {
    this.bytes(ptr, a.byteLength).set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  }
  f32(ptr: number, n: number): Float32Array {
    const out = new Float32Array(n);
    new Uint8Array(out.buffer).set(this.bytes(ptr, 4 * n));
    return out;
  }
  f64(ptr: number, n: number): Float64Array {
    const out = new Float64Array(n);
    new Uint8Array(out.buffer).set(this.bytes(ptr, 8 * n));
    return out;
  }
}

/** 4-aligned for every backend; any byte offset for the Wasm builds (v128 loads need no alignment). */
export function misalign(kind: BackendName, rng: () => number, bytes: 4 | 8): number {
  const off = kind === 'js' ? bytes * Math.floor(rng() * 4) : Math.floor(rng() * 16);
  return off % 16 === 0 ? off + (kind === 'js' ? bytes : 1) : off;
}

/** Puts a fused-pass case (tensor t, scales s, accumulators acc) at misaligned pointers in its own regions. */
export function placeFused(mem: Mem, kind: BackendName, rng: () => number, t: Float32Array, s: Float32Array, acc: Float64Array): { tp: number; sp: number; ap: number } {
  const tp = mem.base + 64 + misalign(kind, rng, 4);
  const sp = mem.base + 256 * 1024 + misalign(kind, rng, 4);
  const ap = mem.base + 512 * 1024 + misalign(kind, rng, 8);
  mem.put(tp, t);
  mem.put(sp, s);
  mem.put(ap, acc);
  return { tp, sp, ap };
}
