/**
 * The Wasm builds for runtimes that refuse to compile Wasm from bytes (workerd, edge-light): the
 * bundler or runtime compiles the .wasm files that these imports name (see scripts/bundle.mjs).
 * Loading this file compiled the simd build, so the runtime has Wasm SIMD.
 */
import simd from 'enorm-wasm:simd';
import scalar from 'enorm-wasm:scalar';
import type { WasmKind } from './modules.js';

const MODULES: Record<WasmKind, WebAssembly.Module> = { simd, scalar };

export function wasmModule(kind: WasmKind): Promise<WebAssembly.Module> {
  return Promise.resolve(MODULES[kind]);
}

export function simdSupported(): boolean {
  return true;
}
