import { ENormError } from '../errors.js';
import type { Backend, BackendName } from './backend.js';
import { createJsBackend } from './js-backend.js';
import { createWasmBackend, simdSupported } from './wasm/bridge.js';

/** 'auto' picks the SIMD build where the runtime validates it, else the scalar build. */
export type BackendChoice = 'auto' | BackendName;

/** A fresh backend (own memory) of the chosen kind. */
export async function createBackend(choice: BackendChoice = 'auto'): Promise<Backend> {
  switch (choice) {
    case 'auto':
      return createWasmBackend(simdSupported() ? 'simd' : 'scalar');
    case 'simd':
    case 'scalar':
      return createWasmBackend(choice);
    case 'js':
      return createJsBackend();
    default:
      throw new ENormError(
        'E_OPTION',
        `backend must be 'auto', 'simd', 'scalar' or 'js', got ${JSON.stringify(String(choice))}`,
      );
  }
}
