// The cycle's compiled schedules (src/engine/schedule.ts): which kernels a fresh and a steady
// cycle call, counted through a spy; and that a device engine keeps no host array.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { CycleKernels, DeviceBackend } from '../../src/engine/backend.js';
import { ENorm } from '../../src/engine/enorm.js';
import { mlp } from '../../src/network/builders.js';
import type { Network } from '../../src/network/layers.js';
import { cloneNetwork, snapshot } from '../helpers/nets.js';

afterEach(() => {
  vi.restoreAllMocks();
});

const KERNELS = ['accumulate', 'scale', 'scaleAccumulate', 'solveScales', 'zero'] as const;
type Counts = Record<(typeof KERNELS)[number], number>;

/** Counts every cycle kernel call on `kernels` (the calls still run). */
function countCalls(kernels: CycleKernels): { take(): Counts } {
  let counts = Object.fromEntries(KERNELS.map((k) => [k, 0])) as Counts;
  for (const name of KERNELS) {
    const real = kernels[name].bind(kernels) as (...a: unknown[]) => void;
    vi.spyOn(kernels, name).mockImplementation(((...a: unknown[]) => { counts[name]++; real(...a); }) as never);
  }
  return {
    take() {
      const out = counts;
      counts = Object.fromEntries(KERNELS.map((k) => [k, 0])) as Counts;
      return out;
    },
  };
}

/** 6 -> 5 -> 4 -> 3 ReLU, momentum: two groups; W1 and W3 alone on their tensor, W2 between the two groups. */
const net = () => mlp({ sizes: [6, 5, 4, 3], seed: 1, momentum: true });

describe('compiled schedules', () => {
  it('fresh (after upload) sums every view; steady skips exactly the views a fused pass summed', async () => {
    const engine = await ENorm.create(net(), { backend: 'js' });
    const spy = countCalls(engine.backend.kernels);
    engine.cycle();
    // Fresh: one zero of all sums + 2 per group; W1, W2 (as group 0's reader) and W3 summed; W2 as
    // group 1's writer was summed by group 0's fused pass. 4 fused rescalings, 2 bias scales,
    // one scale per momentum companion per view (W1, b1, W2 twice, b2, W3).
    expect(spy.take()).toEqual({ accumulate: 3, scaleAccumulate: 4, scale: 2 + 6, solveScales: 2, zero: 1 + 4 });
    for (let k = 0; k < 3; k++) {
      engine.cycle();
      // Steady: every sum was left by a fused pass; the sums are not zeroed as a whole.
      expect(spy.take()).toEqual({ accumulate: 0, scaleAccumulate: 4, scale: 8, solveScales: 2, zero: 4 });
    }
    engine.upload();
    engine.cycle();
    expect(spy.take().accumulate).toBe(3); // fresh again
    engine.discardSums();
    engine.cycle();
    expect(spy.take()).toMatchObject({ accumulate: 3, zero: 5 });
    engine.dispose();
  });

  it('includeBiases: the biases are alone on their tensor and fuse too; cost-free views are never summed', async () => {
    const engine = await ENorm.create(mlp({ sizes: [6, 5, 4, 3], seed: 1 }), { backend: 'js', includeBiases: true });
    const spy = countCalls(engine.backend.kernels);
    engine.cycle();
    expect(spy.take()).toMatchObject({ accumulate: 5, scaleAccumulate: 6, scale: 0 });
    engine.cycle();
    expect(spy.take()).toMatchObject({ accumulate: 0, scaleAccumulate: 6, scale: 0 });
    engine.dispose();
    const plain = await ENorm.create(mlp({ sizes: [6, 5, 4, 3], seed: 1 }), { backend: 'js' });
    const spy2 = countCalls(plain.backend.kernels);
    plain.cycle();
    expect(spy2.take()).toMatchObject({ accumulate: 3, scaleAccumulate: 4, scale: 2 });
    plain.dispose();
  });

  it('replaying the schedules: the same results as a fresh engine per cycle in the fresh case, and step() = upload + cycle + download', async () => {
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
  it('runs the same schedules (fresh, then steady) on a device backend, and keeps only lengths and names', () => {
    const device = recordingDevice();
    const engine = ENorm.onDevice(net(), device);
    engine.cycle();
    const fresh = device.calls.splice(0);
    engine.cycle();
    const steady = device.calls.splice(0);
    expect(fresh.filter((c) => c === 'accumulate')).toHaveLength(3);
    expect(steady.filter((c) => c === 'accumulate')).toHaveLength(0);
    expect(fresh[0]).toBe('zero');
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

