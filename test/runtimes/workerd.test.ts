/**
 * The runtime suite in workerd (@cloudflare/vitest-plugin). workerd refuses to compile Wasm from
 * bytes, so `enorm` must resolve, through the package's `workerd` export condition, to
 * dist/index.workerd.js, which imports the .wasm files statically (a CompiledWasm module rule).
 */
import * as enorm from 'enorm';
import { describe, expect, it } from 'vitest';
import { CASES, type Enorm } from './suite.ts';

describe('workerd', () => {
  it('refuses to compile Wasm from bytes, so the inlined build cannot work here', async () => {
    const empty = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
    await expect(WebAssembly.compile(empty)).rejects.toThrow(/disallowed/i);
  });

  it.each(CASES)('$name', async ({ run }) => run(enorm as unknown as Enorm));
});
