import { afterEach, describe, expect, it, vi } from 'vitest';

afterEach(() => {
  vi.restoreAllMocks();
  vi.resetModules();
});

describe('backend selection by feature detection', () => {
  it("'auto' falls back to the scalar build when the runtime rejects Wasm SIMD", async () => {
    const real = WebAssembly.validate.bind(WebAssembly);
    // A runtime without SIMD: every module using v128 fails validation.
    const { WASM_BASE64: SIMD_WASM_BASE64 } = await import('../../src/engine/wasm/binaries.simd.generated.js');
    const simd = Uint8Array.from(atob(SIMD_WASM_BASE64), (c) => c.charCodeAt(0));
    vi.spyOn(WebAssembly, 'validate').mockImplementation((b) => {
      const bytes = b instanceof Uint8Array ? b : new Uint8Array(b as ArrayBuffer);
      return bytes.length === simd.length && bytes.every((x, i) => x === simd[i]) ? false : real(b);
    });
    const { createBackend } = await import('../../src/engine/select.js');
    const { simdSupported } = await import('../../src/engine/wasm/bridge.js');
    expect(simdSupported()).toBe(false);
    expect((await createBackend('auto')).name).toBe('scalar');
    await expect(createBackend('simd')).rejects.toThrow(/SIMD/);
    // An option the runtime cannot honour: an ENormError, not a plain Error.
    await expect(createBackend('simd')).rejects.toMatchObject({ name: 'ENormError', code: 'E_OPTION' });

    // and the whole engine runs on it
    const { balance } = await import('../../src/engine/enorm.js');
    const { mlp } = await import('../../src/network/builders.js');
    const report = await balance(mlp({ sizes: [6, 5, 3] }), { maxCycles: 5 });
    expect(report.backend).toBe('scalar');
  });

  it("'auto' is the SIMD build where SIMD validates (Node 20)", async () => {
    const { createBackend } = await import('../../src/engine/select.js');
    expect((await createBackend('auto')).name).toBe('simd');
  });
});
