// Resident tensors (ENorm.tensor / companion): views into engine memory that an embedder writes
// in place, then discardSums() + cycle() + materialise(), with no upload or download.
import { describe, expect, it } from 'vitest';
import type { CycleKernels, DeviceBackend } from '../../src/engine/backend.js';
import { ENorm } from '../../src/engine/enorm.js';
import { mlp } from '../../src/network/builders.js';
import { mulberry32, normalArray } from '../../src/network/random.js';
import { throwsENormError as thrown } from '../helpers/errors.js';
import { cloneNetwork } from '../helpers/nets.js';

const BACKENDS = ['simd', 'scalar', 'js'] as const;

/** 6 -> 5 -> 4 -> 3 with momentum: two groups; W1, W3 singles (constant sums), W2 a pair. */
const net = () => mlp({ sizes: [6, 5, 4, 3], seed: 1, momentum: true });

/** New values for every plan tensor and companion of an engine (what an SGD step would write), fixed by seed. */
function newValues(engine: ENorm, seed: number): Float32Array[][] {
  const rng = mulberry32(seed);
  return engine.plan.tensors.map((t, i) => [t, ...t.companions].map(() => normalArray(engine.lengths[i], 0.5, rng)));
}

/** The engine's tensors and companions, read through the resident views (copies). */
function residentValues(engine: ENorm): Float32Array[][] {
  return engine.plan.tensors.map((t, i) => [engine.tensor(i), ...t.companions.map((_, j) => engine.companion(i, j))].map((v) => v.slice()));
}

/** Writes `values` through the resident views. */
function writeResident(engine: ENorm, values: Float32Array[][]): void {
  values.forEach(([w, ...ms], i) => {
    engine.tensor(i).set(w);
    ms.forEach((m, j) => engine.companion(i, j).set(m));
  });
}

/** Writes `values` into the network's arrays (the plan's), as a training framework without resident tensors does. */
function writeArrays(engine: ENorm, values: Float32Array[][]): void {
  values.forEach(([w, ...ms], i) => {
    engine.plan.tensors[i].data.set(w);
    ms.forEach((m, j) => engine.plan.tensors[i].companions[j].set(m));
  });
}

const bits = (arrays: Float32Array[][]) => arrays.map((list) => list.map((a) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length))));

describe('resident tensors', () => {
  it.each(BACKENDS)('%s: views alias engine memory: they read what upload() wrote, cycle() leaves them, materialise() writes them, download() returns them', async (backend) => {
    const n = net();
    const engine = await ENorm.create(n, { backend });
    const t0 = engine.plan.tensors[0];
    expect(engine.tensor(0)).toEqual(t0.data);
    expect(engine.companion(0, 0)).toEqual(t0.companions[0]);
    expect(engine.tensor(0)).not.toBe(t0.data);
    const uploaded = residentValues(engine);
    engine.cycle();
    expect(bits(residentValues(engine))).toEqual(bits(uploaded)); // the cycle only read them
    engine.materialise();
    const balanced = residentValues(engine);
    expect(bits(balanced)).not.toEqual(bits(uploaded));
    engine.download();
    expect(bits(residentValues(engine))).toEqual(bits(balanced));
    expect(bits(engine.plan.tensors.map((t) => [t.data, ...t.companions]))).toEqual(bits(balanced));
    engine.tensor(2).fill(0.25);
    engine.companion(2, 0).fill(-3);
    engine.download();
    // The plan's arrays are the network's own (the second dense layer's weight and momentum).
    expect(engine.plan.tensors[2].data).toBe((n.filter((l) => l.kind === 'dense')[1] as { weight: Float32Array }).weight);
    expect(Array.from(engine.plan.tensors[2].data)).toEqual(Array(20).fill(0.25));
    expect(engine.plan.tensors[2].companions[0].every((x) => x === -3)).toBe(true);
    engine.dispose();
  });

  it.each(BACKENDS)('%s: writing the views + discardSums() + cycle() + materialise() is bit-identical to setting the arrays + upload() + cycle() + download()', async (backend) => {
    const resident = await ENorm.create(net(), { backend });
    const copied = await ENorm.create(cloneNetwork(net()), { backend });
    for (let step = 0; step < 3; step++) {
      // Both engines first run a cycle whose scales stay pending (dropped by the new values).
      resident.cycle();
      copied.cycle();
      const values = newValues(resident, 10 + step);
      writeResident(resident, values);
      resident.discardSums();
      resident.cycle();
      resident.materialise();
      writeArrays(copied, values);
      copied.upload();
      copied.cycle();
      copied.download();
      expect(bits(residentValues(resident))).toEqual(bits(copied.plan.tensors.map((t) => [t.data, ...t.companions])));
      expect(resident.scales()).toEqual(copied.scales());
      expect(resident.energy()).toBe(copied.energy());
    }
    resident.dispose();
    copied.dispose();
  });

  it.each(BACKENDS)('%s: forgetting discardSums() after writing the views keeps the old pending scales and sums: a different result', async (backend) => {
    const fresh = await ENorm.create(net(), { backend });
    const stale = await ENorm.create(cloneNetwork(net()), { backend });
    fresh.cycle();
    stale.cycle();
    const values = newValues(fresh, 7);
    writeResident(fresh, values);
    writeResident(stale, values);
    fresh.discardSums();
    fresh.cycle();
    fresh.materialise();
    stale.cycle(); // no discardSums(): the last cycle's scales and the singles' sums of the old weights
    stale.materialise();
    expect(bits(residentValues(stale))).not.toEqual(bits(residentValues(fresh)));
    expect(stale.energy()).not.toBe(fresh.energy());
    fresh.dispose();
    stale.dispose();
  });

  it('an index out of range is E_OPTION naming the index and the count, for tensor and companion', async () => {
    const engine = await ENorm.create(net(), { backend: 'js' });
    const count = engine.plan.tensors.length;
    for (const i of [-1, count, 1.5, Number.NaN]) {
      const e = thrown(() => engine.tensor(i));
      expect(e.code).toBe('E_OPTION');
      expect(e.message).toContain(`tensor index ${i} is out of range; the plan has ${count} tensors`);
    }
    const e = thrown(() => engine.companion(count, 0));
    expect(e.code).toBe('E_OPTION');
    expect(e.message).toContain(`the plan has ${count} tensors`);
    const c = thrown(() => engine.companion(0, 1));
    expect(c.code).toBe('E_OPTION');
    expect(c.message).toMatch(/companion index 1 is out of range; layer '.+' weight has 1 companion$/);
    expect(c.details).toMatchObject({ layerIndex: engine.plan.tensors[0].layerIndex, tensor: 'weight' });
    const none = await ENorm.create(mlp({ sizes: [4, 3], seed: 2 }), { backend: 'js' });
    expect(thrown(() => none.companion(0, 0)).message).toContain('has 0 companions');
    expect(engine.companion(count - 1, 0)).toHaveLength(engine.lengths[count - 1]);
    engine.dispose();
    none.dispose();
  });

  it('a device engine refuses views with E_STATE (its memory is on the device); a disposed engine with E_STATE', async () => {
    const kernels = Object.fromEntries(['accumulate', 'scale', 'scaleAccumulate', 'solveScales', 'zero'].map((k) => [k, () => {}])) as unknown as CycleKernels;
    const device: DeviceBackend = { name: 'webgpu', kernels, reserve: () => 16 };
    const onDevice = ENorm.onDevice(net(), device);
    for (const call of [() => onDevice.tensor(0), () => onDevice.companion(0, 0)]) {
      const e = thrown(call);
      expect(e.code).toBe('E_STATE');
      expect(e.message).toMatch(/needs a host backend/);
    }
    const engine = await ENorm.create(net(), { backend: 'simd' });
    engine.dispose();
    for (const call of [() => engine.tensor(0), () => engine.companion(0, 0)]) {
      const e = thrown(call);
      expect(e.code).toBe('E_STATE');
      expect(e.message).toMatch(/used after dispose/);
    }
  });

  it('views stay attached while other engines are created, run and disposed (each engine grows its own memory once)', async () => {
    const engine = await ENorm.create(net(), { backend: 'simd' });
    const view = engine.tensor(0);
    const others = await Promise.all([1, 2, 3].map((seed) => ENorm.create(mlp({ sizes: [300, 200, 10], seed }), { backend: 'simd' })));
    for (const o of others) o.step();
    others.forEach((o) => o.dispose());
    expect(view.length).toBe(engine.lengths[0]);
    view.fill(0.5);
    expect(engine.tensor(0).every((x) => x === 0.5)).toBe(true);
    engine.dispose();
  });

  it.each(['simd', 'scalar'] as const)('%s: a view kept after dispose() is detached, so it cannot touch the next engine that reuses the pooled memory', async (backend) => {
    const first = await ENorm.create(net(), { backend });
    const kept = first.tensor(0);
    first.dispose();
    expect(kept.length).toBe(0); // detached: reads give undefined, writes go nowhere
    const second = await ENorm.create(net(), { backend }); // may reuse the pooled instance
    const before = second.tensor(0).slice();
    kept[0] = 7;
    expect(() => kept.fill(7)).toThrow(TypeError);
    expect(second.tensor(0)).toEqual(before);
    second.dispose();
  });
});
