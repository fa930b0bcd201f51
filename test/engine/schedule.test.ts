// The cycle's compiled schedules (src/engine/schedule.ts): which kernels a fresh cycle, a later
// cycle and a materialising pass call, counted through a spy; that a cycle writes no weight; and
// that a device engine keeps no host array.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Backend, CycleKernels, DeviceBackend } from '../../src/engine/backend.js';
import { ENorm } from '../../src/engine/enorm.js';
import { mlp } from '../../src/network/builders.js';
import type { Network } from '../../src/network/layers.js';
import { cloneNetwork, maxRelDiff, snapshot } from '../helpers/nets.js';

afterEach(() => {
  vi.restoreAllMocks();
});

const KERNELS = ['accumulate', 'accumulateScaled', 'scale', 'scaleBoth', 'solve', 'zero', 'fill', 'copy'] as const;
type Counts = Record<(typeof KERNELS)[number], number>;

/** Counts every cycle kernel call on `kernels` (the calls still run). */
function countCalls(kernels: CycleKernels): { take(): Counts } {
  let counts = Object.fromEntries(KERNELS.map((k) => [k, 0])) as Counts;
  for (const name of KERNELS) {
    const real = kernels[name].bind(kernels) as (...a: unknown[]) => unknown;
    vi.spyOn(kernels, name).mockImplementation(((...a: unknown[]) => { counts[name]++; return real(...a); }) as never);
  }
  return {
    take() {
      const out = counts;
      counts = Object.fromEntries(KERNELS.map((k) => [k, 0])) as Counts;
      return out;
    },
  };
}

/** 6 -> 5 -> 4 -> 3 ReLU, momentum: two groups; W1 and W3 alone on their tensor (singles), W2 between the two groups (a pair). */
const net = () => mlp({ sizes: [6, 5, 4, 3], seed: 1, momentum: true });

/** Every byte of the engine's tensors and companions. */
const arrays = (e: ENorm) => {
  const f32 = new Float32Array((e.backend as Backend).buffer);
  return e.plan.tensors.flatMap((_, i) => e.arrayPointers(i).map((ptr) => Array.from(f32.subarray(ptr >>> 2, (ptr >>> 2) + e.lengths[i]))));
};

describe('compiled schedules', () => {
  it('fresh: singles summed once; every cycle: the pair walked once per group, no weight written; materialise: one pass per array', async () => {
    const engine = await ENorm.create(net(), { backend: 'js' });
    const spy = countCalls(engine.backend.kernels);
    const before = arrays(engine);
    engine.cycle();
    // Fresh: log sigma zeroed, sigma, 1/sigma and the one 1.0 filled, two base blocks zeroed, and the
    // singles in the cost, W1 and W3, summed once (biases are not in the cost); then per group one
    // copy of the base and one zero; W2 walked once per group (as group 0's outgoing, group 1's incoming).
    expect(spy.take()).toEqual({ accumulate: 2, accumulateScaled: 2, scale: 0, scaleBoth: 0, solve: 2, zero: 1 + 2 + 2, fill: 3, copy: 2 });
    for (let k = 0; k < 3; k++) {
      engine.cycle();
      expect(spy.take()).toEqual({ accumulate: 0, accumulateScaled: 2, scale: 0, scaleBoth: 0, solve: 2, zero: 2, fill: 0, copy: 2 });
    }
    expect(arrays(engine)).toEqual(before); // a cycle reads the weights and writes none
    engine.materialise();
    // W1, b1, W2, b2, W3 and a momentum companion each: 10 passes; b3 is in no group.
    expect(spy.take()).toMatchObject({ scaleBoth: 10, accumulateScaled: 0, solve: 0 });
    expect(arrays(engine)).not.toEqual(before);
    engine.materialise(); // nothing pending
    expect(spy.take().scaleBoth).toBe(0);
    engine.cycle(); // fresh again after a materialise
    expect(spy.take().accumulate).toBe(2);
    engine.upload();
    engine.cycle();
    expect(spy.take()).toMatchObject({ accumulate: 2, fill: 3 });
    engine.dispose();
  });

  it('includeBiases: the biases are singles in the cost, summed once; cost-free views are never summed', async () => {
    const engine = await ENorm.create(mlp({ sizes: [6, 5, 4, 3], seed: 1 }), { backend: 'js', includeBiases: true });
    const spy = countCalls(engine.backend.kernels);
    engine.cycle();
    expect(spy.take()).toMatchObject({ accumulate: 4, accumulateScaled: 2, scale: 0 });
    engine.cycle();
    expect(spy.take()).toMatchObject({ accumulate: 0, accumulateScaled: 2, scale: 0 });
    engine.dispose();
    const plain = await ENorm.create(mlp({ sizes: [6, 5, 4, 3], seed: 1 }), { backend: 'js' });
    const spy2 = countCalls(plain.backend.kernels);
    plain.cycle();
    expect(spy2.take()).toMatchObject({ accumulate: 2, accumulateScaled: 2, scale: 0 });
    plain.dispose();
  });

  it('replaying the schedules: upload resets the pending scales; step() = upload + cycle + download', async () => {
    const a = net();
    const b = cloneNetwork(a);
    const ea = await ENorm.create(a, { backend: 'js' });
    ea.step();
    ea.step(); // two fresh cycles (upload before each)
    const eb = await ENorm.create(b, { backend: 'js' });
    eb.step();
    eb.dispose();
    const eb2 = await ENorm.create(b, { backend: 'js' });
    eb2.step();
    expect(snapshot(a)).toEqual(snapshot(b));
    ea.dispose();
    eb2.dispose();
  });

  it('energy after a cycle comes from the group steps (no pass over the weights) and equals the materialised energy', async () => {
    for (const backend of ['js', 'simd', 'scalar'] as const) {
      const engine = await ENorm.create(mlp({ sizes: [12, 10, 9, 8, 5], seed: 4, momentum: true }), { backend });
      const energy = vi.spyOn((engine.backend as Backend).kernels, 'energy');
      const free: number[] = [];
      for (let k = 0; k < 5; k++) {
        engine.cycle();
        free.push(engine.energy());
      }
      expect(energy).not.toHaveBeenCalled();
      engine.materialise();
      const read = engine.energy();
      expect(energy).toHaveBeenCalled();
      expect(Math.abs(free[4] - read) / read).toBeLessThan(1e-6);
      engine.dispose();
    }
  });

  it('eager tensors (a depthwise kernel) are rescaled at each step and agree with a deferred twin', async () => {
    const dw: Network = [
      { kind: 'conv2d', name: 'c1', weight: Float32Array.from({ length: 3 * 3 * 2 * 4 }, (_, i) => Math.sin(i + 1)), shape: [3, 3, 2, 4], padding: 'same', strides: 1 },
      { kind: 'relu', name: 'r1' },
      { kind: 'depthwise-conv2d', name: 'd1', weight: Float32Array.from({ length: 3 * 3 * 4 * 2 }, (_, i) => Math.cos(i + 2)), shape: [3, 3, 4, 2], padding: 'same', strides: 1 },
      { kind: 'relu', name: 'r2' },
      { kind: 'conv2d', name: 'c2', weight: Float32Array.from({ length: 8 * 3 }, (_, i) => Math.sin(3 * i + 1)), shape: [1, 1, 8, 3], padding: 'same', strides: 1 },
    ] as Network;
    const engine = await ENorm.create(dw, { backend: 'js' });
    const spy = countCalls(engine.backend.kernels);
    engine.cycle();
    engine.cycle();
    // The depthwise kernel is eager: rescaled in each of its two groups' steps.
    expect(spy.take().scale).toBe(4);
    engine.dispose();
    const { balanceReference } = await import('../../src/reference/reference.js');
    const ref = balanceReference(dw, { maxCycles: 8, tolerance: 0, omega: 1 });
    const e2 = await ENorm.create(dw, { backend: 'simd' });
    for (let k = 0; k < 8; k++) e2.cycle();
    e2.download();
    ref.plan.tensors.forEach((t, i) => expect(maxRelDiff(t.data, ref.tensors[i])).toBeLessThan(1e-5));
    e2.dispose();
  });
});

/** A device backend that only records kernel calls: ENorm.onDevice needs nothing else. */
function recordingDevice(): DeviceBackend & { calls: string[] } {
  const calls: string[] = [];
  const kernels = Object.fromEntries(KERNELS.map((k) => [k, () => { calls.push(k); }])) as unknown as CycleKernels;
  let top = 16;
  return {
    name: 'webgpu',
    kernels,
    calls,
    reserve(bytes: number) {
      const at = top;
      top += Math.ceil(bytes / 16) * 16;
      return at;
    },
  };
}

/** `gc()` in a forked test worker, without --expose-gc on the command line. */
function collector(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

const tick = () => new Promise((r) => setTimeout(r, 0));

/**
 * Collects until `ref` is cleared, at most 5 rounds: an object allocated while incremental marking
 * runs survives the GC that finishes it. Each round starts a new job (a deref keeps its target for the rest of the job).
 */
async function collect(gc: () => void, ref: WeakRef<object>): Promise<void> {
  for (let round = 0; round < 5 && ref.deref() !== undefined; round++) {
    await tick();
    gc();
  }
}

describe('a device engine', () => {
  it('runs the same schedules (fresh, cycle, materialise) on a device backend, and keeps only lengths and names', () => {
    const device = recordingDevice();
    const engine = ENorm.onDevice(net(), device);
    engine.cycle();
    const fresh = device.calls.splice(0);
    engine.cycle();
    const steady = device.calls.splice(0);
    engine.materialise();
    const materialise = device.calls.splice(0);
    expect(fresh.filter((c) => c === 'accumulate')).toHaveLength(2);
    expect(steady.filter((c) => c === 'accumulate')).toHaveLength(0);
    expect(fresh[0]).toBe('zero');
    expect(materialise).toEqual(Array(10).fill('scaleBoth'));
    expect(engine.lengths).toEqual([30, 5, 20, 4, 12, 3]);
    expect(engine.plan.tensors.every((t) => t.data.length === 0 && t.companions.every((m) => m.length === 0))).toBe(true);
    expect(engine.plan.tensors.map((t) => `${t.layer} ${t.role}`)).toEqual(net().filter((l) => l.kind === 'dense').flatMap((l) => [`${l.name} weight`, `${l.name} bias`]));
  });

  it("holds no reference to the network's arrays once onDevice returned (WeakRef cleared by gc)", async () => {
    const gc = collector();
    const make = (): { engine: ENorm; weight: WeakRef<Float32Array>; momentum: WeakRef<Float32Array> } => {
      const n: Network = net();
      const layer = n[0] as { weight: Float32Array; companions: { weight: Float32Array } };
      return { engine: ENorm.onDevice(n, recordingDevice()), weight: new WeakRef(layer.weight), momentum: new WeakRef(layer.companions.weight) };
    };
    const { engine, weight, momentum } = make();
    await collect(gc, weight);
    await collect(gc, momentum);
    expect(weight.deref()).toBeUndefined();
    expect(momentum.deref()).toBeUndefined();
    engine.cycle(); // and the engine still works
    expect(engine.units).toBe(9);
  });

  it('a host engine, by contrast, keeps the arrays it uploads from and downloads to', async () => {
    const gc = collector();
    const make = async () => {
      const n = net();
      return { engine: await ENorm.create(n, { backend: 'js' }), weight: new WeakRef((n[0] as { weight: Float32Array }).weight) };
    };
    const { engine, weight } = await make();
    await collect(gc, weight);
    expect(weight.deref()).toBeInstanceOf(Float32Array);
    engine.dispose();
  });
});

