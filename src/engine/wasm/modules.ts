/**
 * Where the Wasm builds come from, by default: inlined as base64, so that one import works in every
 * runtime that may compile Wasm from bytes. The scalar build, needed only where Wasm SIMD is missing
 * or asked for, is a dynamic import, which ESM bundles split off. Edge bundles swap this file for
 * modules.static.ts.
 */
import { WASM_BASE64 as SIMD_BASE64 } from './binaries.simd.generated.js';

export type WasmKind = 'simd' | 'scalar';

const compiled: Partial<Record<WasmKind, Promise<WebAssembly.Module>>> = {};
let simdBytes: Uint8Array<ArrayBuffer> | undefined;
let simdValid: boolean | undefined;

function decode(base64: string): Uint8Array<ArrayBuffer> {
  const s = atob(base64);
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i);
  return b;
}

async function bytes(kind: WasmKind): Promise<Uint8Array<ArrayBuffer>> {
  if (kind === 'simd') return (simdBytes ??= decode(SIMD_BASE64));
  return decode((await import('./binaries.scalar.generated.js')).WASM_BASE64);
}

/** The compiled module, compiled at most once (a failed compile is retried on the next call). */
export function wasmModule(kind: WasmKind): Promise<WebAssembly.Module> {
  let m = compiled[kind];
  if (!m) {
    m = bytes(kind).then((b) => WebAssembly.compile(b));
    m.catch(() => {
      if (compiled[kind] === m) delete compiled[kind];
    });
    compiled[kind] = m;
  }
  return m;
}

/** Whether this runtime accepts the SIMD build (fixed-width 128-bit SIMD). */
export function simdSupported(): boolean {
  if (simdValid === undefined) {
    simdValid = typeof WebAssembly === 'object' && WebAssembly.validate((simdBytes ??= decode(SIMD_BASE64)));
  }
  return simdValid;
}
