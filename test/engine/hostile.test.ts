// Hostile API input: every expected failure is an ENormError with a code (never a TypeError or
// RangeError), and nothing changes. Buffers detached or resized while the package awaits (or
// between steps) are caught before anything is written.
import { describe, expect, it } from 'vitest';
import { balance, ENorm } from '../../src/engine/enorm.js';
import type { ENormErrorCode } from '../../src/errors.js';
import { ENormError, isENormError } from '../../src/errors.js';
import { mlp } from '../../src/network/builders.js';
import type { Layer, Network } from '../../src/network/layers.js';
import { validateLayers } from '../../src/network/validate.js';
import { balanceReference } from '../../src/reference/reference.js';
import { snapshot } from '../helpers/nets.js';

type Entry = 'balance' | 'ENorm.create' | 'balanceReference' | 'validateLayers';
const ENTRIES: Entry[] = ['balance', 'ENorm.create', 'balanceReference', 'validateLayers'];

/** Runs an entry point on hostile input; resolves to what it threw (null when it did not). */
async function failure(entry: Entry, net: unknown, options?: unknown): Promise<unknown> {
  try {
    if (entry === 'balance') await balance(net as Network, options as object);
    else if (entry === 'ENorm.create') (await ENorm.create(net as Network, options as object)).dispose();
    else if (entry === 'balanceReference') balanceReference(net as Network, options as object);
    else validateLayers(net as Network);
    return null;
  } catch (e) {
    return e;
  }
}

async function expectENormError(entry: Entry, net: unknown, code: ENormErrorCode, message: RegExp, options?: unknown) {
  const e = await failure(entry, net, options);
  expect(isENormError(e), `${entry}: ${String(e)}`).toBe(true);
  expect((e as ENormError).code, `${entry}: ${(e as Error).message}`).toBe(code);
  expect((e as ENormError).message).toMatch(message);
  expect((e as ENormError).message).not.toMatch(/\n/);
}

const small = () => mlp({ sizes: [4, 3, 2], seed: 1 });
const dense = (extra: Record<string, unknown> = {}) => ({ kind: 'dense', weight: new Float32Array(6).fill(0.5), shape: [3, 2], ...extra });

describe('networks that are not arrays of layer objects', () => {
  const cases: { name: string; net: () => unknown; message: RegExp; graphOnly?: boolean }[] = [
    { name: 'null', net: () => null, message: /the network must be an array of layers, got null/ },
    { name: 'undefined', net: () => undefined, message: /must be an array of layers, got undefined/ },
    { name: 'an object', net: () => ({}), message: /must be an array of layers, got \[object Object\]/ },
    { name: 'a string', net: () => 'x', message: /must be an array of layers, got x/ },
    { name: 'a number', net: () => 42, message: /must be an array of layers, got 42/ },
    { name: 'a revoked proxy', net: () => { const p = Proxy.revocable([], {}); p.revoke(); return p.proxy; }, message: /the network could not be read/ },
    { name: 'a null layer', net: () => [dense(), null], message: /layer #1 must be an object with a 'kind', got null/ },
    { name: 'a string layer', net: () => ['relu'], message: /layer #0 must be an object with a 'kind', got relu/ },
    { name: 'an array layer', net: () => [dense(), []], message: /layer #1 must be an object with a 'kind', got an array of 0/ },
    { name: 'a typed-array layer', net: () => [new Float32Array(4)], message: /layer #0 must be an object with a 'kind', got \[object Float32Array\]/ },
    { name: 'a Symbol name', net: () => [dense({ name: Symbol('x') })], message: /layer #0: name must be a non-empty string, got Symbol\(x\)/ },
    { name: 'an input that is not a string', net: () => [dense({ name: 'a' }), { kind: 'add', inputs: ['a', 7] }], message: /'inputs' must be layer names \(strings\), got 7/, graphOnly: true },
  ];
  it.each(cases)('$name -> E_GRAPH from every entry point', async ({ net, message, graphOnly }) => {
    // validateLayers checks layers one by one; the graph (inputs) is resolved when planning.
    for (const entry of ENTRIES.filter((e) => !graphOnly || e !== 'validateLayers')) await expectENormError(entry, net(), 'E_GRAPH', message);
  });
});

describe('options that are not an options object', () => {
  const cases: { name: string; options: unknown; message: RegExp }[] = [
    { name: 'null', options: null, message: /options must be an object, got null/ },
    { name: 'a string', options: 'fast', message: /options must be an object, got fast/ },
    { name: 'a number', options: 3, message: /options must be an object, got 3/ },
    { name: 'an array', options: [1, 2], message: /options must be an object, got an array of 2/ },
    { name: 'a function', options: () => 1, message: /options must be an object, got a function/ },
    { name: 'a throwing getter', options: { get c(): number { throw new Error('no c today'); } }, message: /reading option 'c' threw: no c today/ },
    { name: 'a Symbol value', options: { p: Symbol('p') }, message: /p must be a finite number > 0, got Symbol\(p\)/ },
    { name: 'an object whose toString throws', options: { c: { toString() { throw new Error('x'); } } }, message: /c must be a finite number > 0, got \[object Object\]/ },
    { name: 'onCycle not a function', options: { onCycle: 'log' }, message: /onCycle must be a function/ },
  ];
  it.each(cases)('$name -> E_OPTION', async ({ options, message }) => {
    for (const entry of ['balance', 'ENorm.create', 'balanceReference'] as const) {
      const net = small();
      const before = snapshot(net);
      await expectENormError(entry, net, 'E_OPTION', message, options);
      expect(snapshot(net)).toEqual(before);
    }
  });

  it('each option is read once: a getter cannot pass one value to the check and another to the run', async () => {
    let reads = 0;
    const options = { get maxCycles() { reads++; return reads === 1 ? 2 : -1; } };
    const report = await balance(small(), options);
    expect(report.cycles).toBeLessThanOrEqual(2);
    expect(reads).toBe(1);
  });
});

describe('layer fields', () => {
  const fakeF32 = () => Object.create(Float32Array.prototype) as Float32Array;
  const cases: { name: string; layer: () => unknown; code: ENormErrorCode; message: RegExp }[] = [
    { name: 'weight is a plain array', layer: () => dense({ weight: [1, 2, 3, 4, 5, 6] }), code: 'E_TYPE', message: /layer '#0' \(dense\): weight must be a Float32Array, got an array of 6/ },
    { name: 'weight is an array-like', layer: () => dense({ weight: { length: 6, 0: 1 } }), code: 'E_TYPE', message: /weight must be a Float32Array, got \[object Object\]/ },
    { name: 'weight is a Float64Array', layer: () => dense({ weight: new Float64Array(6) }), code: 'E_TYPE', message: /weight must be a Float32Array, got \[object Float64Array\]/ },
    { name: 'weight has Float32Array.prototype but is not one', layer: () => dense({ weight: fakeF32() }), code: 'E_TYPE', message: /weight must be a Float32Array/ },
    { name: 'companion is an array-like', layer: () => dense({ companions: { weight: { length: 6 } } }), code: 'E_TYPE', message: /companion 0 of weight must be a Float32Array/ },
    { name: 'a getter that throws', layer: () => ({ kind: 'dense', shape: [3, 2], get weight(): Float32Array { throw new Error('boom'); } }), code: 'E_TYPE', message: /layer #0: reading 'weight' threw: boom/ },
    { name: 'a proxy whose get trap throws', layer: () => new Proxy({}, { get() { throw new TypeError('trap'); } }), code: 'E_TYPE', message: /layer #0: reading 'kind' threw: trap/ },
    { name: 'a revoked proxy', layer: () => { const p = Proxy.revocable({}, {}); p.revoke(); return p.proxy; }, code: 'E_TYPE', message: /layer #0: reading the layer threw/ },
    { name: 'a Symbol kind', layer: () => ({ kind: Symbol('dense') }), code: 'E_LAYER_KIND', message: /unknown kind 'Symbol\(dense\)'/ },
    { name: 'a BigInt in shape', layer: () => dense({ shape: [3n, 2] }), code: 'E_SHAPE', message: /shape must be 2 positive integers, got an array of 2/ },
    { name: 'a Symbol epsilon', layer: () => ({ kind: 'batch-norm', mean: new Float32Array(2), variance: new Float32Array(2).fill(1), epsilon: Symbol('e') }), code: 'E_OPTION', message: /epsilon must be a finite number >= 0, got Symbol\(e\)/ },
    { name: 'a layout whose toString throws', layer: () => dense({ layout: { toString() { throw new Error('no'); } } }), code: 'E_LAYOUT', message: /layout '\[object Object\]' is not one of io, oi/ },
  ];
  it.each(cases)('$name -> $code', async ({ layer, code, message }) => {
    for (const entry of ENTRIES) await expectENormError(entry, [layer(), { kind: 'relu' }, dense({ shape: [2, 3] })], code, message);
  });

  it('getters are read once per field, so validation and planning see the same tensor', async () => {
    const good = new Float32Array(6).fill(0.5);
    let reads = 0;
    const first = {
      kind: 'dense',
      shape: [3, 2],
      // A later read returns an array of the wrong length, which an engine planning from a second read would lay out.
      get weight() { reads++; return reads === 1 ? good : new Float32Array(1); },
    };
    const second = dense({ shape: [2, 3] });
    second.weight[0] = 4;
    const report = await balance([first as unknown as Layer, { kind: 'relu' }, second as unknown as Layer], { maxCycles: 1 });
    expect(reads).toBe(1);
    expect(report.units).toBe(2);
    expect(good.some((x) => x !== 0.5)).toBe(true); // the validated array was the one rescaled
  });

  it('inherited getters (class instances) are layer fields too', async () => {
    class Dense {
      readonly kind = 'dense';
      readonly shape = [3, 2];
      #w = new Float32Array(6).fill(2);
      get weight() { return this.#w; }
    }
    const layer = new Dense();
    const report = await balance([layer as unknown as Layer, { kind: 'relu' }, dense({ shape: [2, 3] }) as unknown as Layer], { maxCycles: 3 });
    expect(report.energyAfter).toBeLessThan(report.energyBefore);
    expect(layer.weight[0]).not.toBe(2);
  });
});

type Resizable = ArrayBuffer & { resize(bytes: number): void };
const resizable = (bytes: number, max: number) => new (ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => Resizable)(bytes, { maxByteLength: max });
const detach = (buffer: ArrayBuffer) => structuredClone(buffer, { transfer: [buffer] });

/** An MLP whose first weight lives in `make(bytes)`'s buffer (a length-tracking view when resizable). */
function netOn<B extends ArrayBuffer>(make: (bytes: number) => B): { net: Network; buffer: B; others: () => Uint32Array[] } {
  const net = mlp({ sizes: [5, 4, 3], seed: 7, momentum: true });
  const first = net[0] as Extract<Layer, { kind: 'dense' }>;
  const buffer = make(first.weight.byteLength);
  const view = new Float32Array(buffer);
  view.set(first.weight);
  first.weight = view;
  return { net, buffer, others: () => snapshot(net.map((l) => (l === first ? { ...first, weight: new Float32Array(0) } : l)) as Network) };
}

describe('buffers detached or resized after validation', () => {
  it('detached between steps: step() is E_STATE naming the tensor; nothing is written', async () => {
    const { net, buffer, others } = netOn((n) => new ArrayBuffer(n));
    const engine = await ENorm.create(net);
    engine.step();
    const before = others();
    detach(buffer);
    for (const call of [() => engine.step(), () => engine.upload(), () => engine.download()]) {
      const e = (() => { try { call(); return null; } catch (x) { return x as ENormError; } })();
      expect(e?.code).toBe('E_STATE');
      expect(e?.message).toMatch(/^layer 'dense1' weight: its ArrayBuffer was detached \(transferred\)/);
      expect(e?.details).toEqual({ layerIndex: 0, layer: 'dense1', tensor: 'weight' });
    }
    expect(others()).toEqual(before);
    engine.dispose();
  });

  it.each(['ENorm.create', 'balance'] as const)('detached while %s awaits its Wasm instance: E_STATE, nothing changed', async (entry) => {
    const { net, buffer, others } = netOn((n) => new ArrayBuffer(n));
    const before = others();
    // Validation ran synchronously; the buffer goes while the call is suspended.
    const run = entry === 'balance' ? balance(net) : ENorm.create(net);
    detach(buffer);
    const e = (await run.then(() => null, (x: unknown) => x)) as ENormError;
    expect(isENormError(e), String(e)).toBe(true);
    expect(e.code).toBe('E_STATE');
    expect(e.message).toMatch(/detached/);
    expect(others()).toEqual(before);
  });

  it('detached by onCycle during balance(): E_STATE, and no array is written back', async () => {
    const { net, buffer, others } = netOn((n) => new ArrayBuffer(n));
    const before = others();
    const e = (await balance(net, { maxCycles: 5, tolerance: 0, onCycle: (c) => { if (c === 2) detach(buffer); } }).then(() => null, (x: unknown) => x)) as ENormError;
    expect(e?.code).toBe('E_STATE');
    expect(others()).toEqual(before);
  });

  it('a resizable buffer grown or shrunk after create: E_SHAPE naming the tensor; nothing is written', async () => {
    const { net, buffer, others } = netOn((n) => resizable(n, 4 * n));
    const first = net[0] as Extract<Layer, { kind: 'dense' }>;
    const bytes = first.weight.byteLength;
    const engine = await ENorm.create(net);
    const before = others();
    for (const size of [bytes + 64, bytes - 8, 0]) {
      buffer.resize(size);
      const e = (() => { try { engine.step(); return null; } catch (x) { return x as ENormError; } })();
      expect(e?.code, String(size)).toBe('E_SHAPE');
      expect(e?.message).toMatch(new RegExp(`^layer 'dense1' weight now has ${size / 4} elements, the engine was laid out for ${bytes / 4}`));
      expect(others()).toEqual(before);
    }
    // Back to its size, the engine works again.
    buffer.resize(bytes);
    first.weight.fill(0.25);
    expect(() => engine.step()).not.toThrow();
    engine.dispose();
  });

  it('a resizable buffer grown while ENorm.create awaits: E_SHAPE, nothing changed', async () => {
    const { net, buffer, others } = netOn((n) => resizable(n, 4 * n));
    const before = others();
    const run = ENorm.create(net);
    buffer.resize(2 * buffer.byteLength);
    const e = (await run.then(() => null, (x: unknown) => x)) as ENormError;
    expect(e?.code).toBe('E_SHAPE');
    expect(others()).toEqual(before);
  });
});
