// Engine lifetime: dispose() / `using`, E_STATE after it, and Wasm instances reused from a pool,
// so that engine after engine (or balance() after balance()) never exhausts Wasm memory.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { balance, ENorm } from '../../src/engine/enorm.js';
import { createBackend } from '../../src/engine/select.js';
import { createWasmBackend, wasmPoolStats } from '../../src/engine/wasm/bridge.js';
import { ENormError, isENormError } from '../../src/errors.js';
import { mlp } from '../../src/network/builders.js';
import { cloneNetwork, snapshot } from '../helpers/nets.js';

afterEach(() => {
  vi.restoreAllMocks();
});

async function rejection(p: Promise<unknown>): Promise<ENormError> {
  const e = await p.then(() => null, (x: unknown) => x);
  expect(isENormError(e), String(e)).toBe(true);
  return e as ENormError;
}

function thrown(fn: () => unknown, what = 'the call'): ENormError {
  try {
    fn();
  } catch (e) {
    expect(isENormError(e), String(e)).toBe(true);
    return e as ENormError;
  }
  throw new Error(`${what} did not throw`);
}

describe('dispose()', () => {
  it.each(['simd', 'scalar', 'js'] as const)('every method of a disposed %s engine throws E_STATE and the arrays keep their values', async (backend) => {
    const net = mlp({ sizes: [6, 5, 4, 3], seed: 1, momentum: true });
    const engine = await ENorm.create(net, { backend });
    engine.step();
    const savedCycle = engine.cycle;
    const before = snapshot(net);
    expect(engine.isDisposed).toBe(false);
    engine.dispose();
    expect(engine.isDisposed).toBe(true);
    const calls: [string, () => unknown][] = [
      ['upload', () => engine.upload()],
      ['download', () => engine.download()],
      ['cycle', () => engine.cycle()],
      ['step', () => engine.step()],
      ['energy', () => engine.energy()],
      ['scales', () => engine.scales()],
      ['discardSums', () => engine.discardSums()],
      ['arrayPointers', () => engine.arrayPointers(0)],
      ['units', () => engine.units],
      // A cycle saved before dispose reaches the kernels through the engine: they refuse too.
      ['saved cycle', () => savedCycle.call(engine)],
      // So do the backend's memory and kernels, which a pooled instance may now lend to another engine.
      ['backend.buffer', () => (engine.backend as { buffer: ArrayBuffer }).buffer],
      ['backend.reserve', () => (engine.backend as { reserve(n: number): number }).reserve(16)],
      ['backend.kernels', () => engine.backend.kernels.zero(engine.tensorPointers[0], 16)],
    ];
    for (const [name, call] of calls) {
      const e = thrown(call, name);
      expect(e.code, name).toBe('E_STATE');
      expect(e.message, name).toMatch(/used after dispose\(\)/);
    }
    expect(snapshot(net)).toEqual(before);
    // Idempotent, as the Disposable protocol expects.
    expect(() => engine.dispose()).not.toThrow();
    expect(() => engine[Symbol.dispose]()).not.toThrow();
  });

  it('`using` disposes the engine at the end of its block', async () => {
    const net = mlp({ sizes: [6, 5, 3], seed: 2 });
    let seen: ENorm | null = null;
    {
      using engine = await ENorm.create(net);
      engine.step();
      seen = engine;
      expect(engine.isDisposed).toBe(false);
    }
    expect(seen.isDisposed).toBe(true);
    expect(thrown(() => seen!.step()).code).toBe('E_STATE');
    expect(typeof Symbol.dispose).toBe('symbol');
  });
});

describe('Wasm instance pool', () => {
  it('20,000 engines created, stepped and disposed one after another share one instance', async () => {
    const net = mlp({ sizes: [4, 3, 2], seed: 3 });
    const first = wasmPoolStats().instantiated;
    for (let i = 0; i < 20_000; i++) {
      const engine = await ENorm.create(net, { c: 1.1 });
      engine.step();
      engine.dispose();
    }
    // At most one fresh instance (none if one was pooled already); every other engine reused it.
    expect(wasmPoolStats().instantiated - first).toBeLessThanOrEqual(1);
    expect(wasmPoolStats().pooled).toBeGreaterThanOrEqual(1);
  });

  it('balance() 20,000 times reuses its instance (each call disposes its engine)', async () => {
    const first = wasmPoolStats().instantiated;
    for (let i = 0; i < 20_000; i++) {
      const report = await balance(mlp({ sizes: [4, 3, 2], seed: i }), { maxCycles: 3 });
      expect(report.cycles).toBeGreaterThan(0);
    }
    expect(wasmPoolStats().instantiated - first).toBeLessThanOrEqual(1);
  });

  it('a reused instance gives the same results as a fresh one, and its memory comes back zeroed', async () => {
    const net = mlp({ sizes: [10, 8, 6, 4], seed: 4, momentum: true });
    const twin = cloneNetwork(net);
    const a = await ENorm.create(net, { backend: 'simd' });
    // Dirty everything the engine wrote: its tensors and companions (and the scratch before them).
    const buffer = (a.backend as { buffer: ArrayBuffer }).buffer;
    const from = a.tensorPointers[0];
    const ends = a.plan.tensors.flatMap((t, i) => a.arrayPointers(i).map((p) => p + 4 * t.data.length));
    const end = ends.reduce((x, y) => Math.max(x, y), 0);
    new Uint8Array(buffer, from, end - from).fill(0xa5);
    a.dispose();
    const made = wasmPoolStats().instantiated;
    const b = await createWasmBackend('simd');
    expect(wasmPoolStats().instantiated).toBe(made); // from the pool
    const ptr = b.reserve(end);
    expect(ptr).toBeLessThanOrEqual(from);
    expect(new Uint8Array(b.buffer, ptr, end - ptr).every((x) => x === 0)).toBe(true);
    b.dispose();
    // And a network balanced on the reused instance matches one balanced on the 'js' backend.
    const r1 = await balance(net, { maxCycles: 4, tolerance: 0, backend: 'simd' });
    const r2 = await balance(twin, { maxCycles: 4, tolerance: 0, backend: 'js' });
    expect(r1.energies.map((e) => +e.toPrecision(6))).toEqual(r2.energies.map((e) => +e.toPrecision(6)));
  });

  it('failing to instantiate Wasm (too many live engines) is E_MEMORY saying to dispose engines; nothing changes', async () => {
    const net = mlp({ sizes: [6, 5, 3], seed: 5 });
    // Live engines take every pooled instance, so the next one must instantiate.
    const live = await Promise.all(Array.from({ length: 6 }, () => ENorm.create(net)));
    const before = snapshot(net);
    vi.spyOn(WebAssembly, 'instantiate').mockRejectedValue(new RangeError('WebAssembly.instantiate(): Out of memory: Cannot allocate Wasm memory for new instance'));
    for (const run of [() => ENorm.create(net), () => balance(net)]) {
      const e = await rejection(run());
      expect(e.code).toBe('E_MEMORY');
      expect(e.message).toMatch(/Cannot allocate Wasm memory/);
      expect(e.message).toMatch(/dispose\(\)/);
      expect(e.message).not.toMatch(/\n/);
    }
    expect(snapshot(net)).toEqual(before);
    vi.restoreAllMocks();
    for (const engine of live) engine.dispose();
  });

  it('failing to grow Wasm memory is E_MEMORY; the instance goes back to the pool', async () => {
    const net = mlp({ sizes: [100, 200, 3], seed: 6 }); // needs more than the initial 64 KiB page
    const before = snapshot(net);
    // Only growth fails (as at the maximum size); grow(0), which dispose uses to detach views, still works.
    const grow = WebAssembly.Memory.prototype.grow;
    vi.spyOn(WebAssembly.Memory.prototype, 'grow').mockImplementation(function (this: WebAssembly.Memory, delta: number) {
      if (delta > 0) throw new RangeError('WebAssembly.Memory.grow(): Maximum memory size exceeded');
      return grow.call(this, delta);
    });
    const e = await rejection(ENorm.create(net, { backend: 'scalar' }));
    expect(e.code).toBe('E_MEMORY');
    expect(e.message).toMatch(/cannot grow WebAssembly memory .*Maximum memory size exceeded.*dispose/);
    expect(snapshot(net)).toEqual(before);
    vi.restoreAllMocks();
    const made = wasmPoolStats().instantiated;
    (await ENorm.create(net, { backend: 'scalar' })).dispose();
    expect(wasmPoolStats().instantiated).toBe(made);
  });
});

describe('expected failures of the backends are ENormErrors', () => {
  it('unknown backend or build names are E_OPTION', async () => {
    expect((await rejection(createBackend('gpu' as never))).code).toBe('E_OPTION');
    expect((await rejection(createWasmBackend('wasm64' as never))).code).toBe('E_OPTION');
  });

  it.each(['simd', 'scalar', 'js'] as const)('%s: reserve of a negative, fractional or NaN size is E_MEMORY', async (kind) => {
    const b = await createBackend(kind);
    for (const n of [-1, 1.5, NaN, 2 ** 53]) expect(thrown(() => b.reserve(n)).code).toBe('E_MEMORY');
    b.dispose();
  });
});
