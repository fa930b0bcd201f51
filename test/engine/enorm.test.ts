import { describe, expect, it } from 'vitest';
import { balance, ENorm } from '../../src/engine/enorm.js';
import type { BackendName } from '../../src/engine/backend.js';
import { ENormError } from '../../src/errors.js';
import { convChain, mlp, resnet18, vgg } from '../../src/network/builders.js';
import type { Network } from '../../src/network/layers.js';
import { mulberry32, normalArray } from '../../src/network/random.js';
import { balanceReference, groupCosts } from '../../src/reference/reference.js';
import { buildArchitecture, type ArchitectureSpec } from '../helpers/architectures.js';
import { cloneNetwork, maxRelDiff, randomInputs, randomRescale, run, snapshot } from '../helpers/nets.js';

const BACKENDS: BackendName[] = ['simd', 'scalar', 'js'];

/** Float32 tensors of a network in plan order, read through a fresh reference plan. */
function planTensors(net: Network): Float32Array[] {
  return balanceReference(net, { maxCycles: 0 }).plan.tensors.map((t) => t.data);
}

describe.each(BACKENDS)('backend %s against the float64 reference', (backend) => {
  it.each([
    { name: 'mlp io, biases counted, p=2 c=1', net: () => mlp({ sizes: [20, 16, 12, 8, 5], seed: 1, momentum: true }), p: 2, c: 1, includeBiases: true },
    { name: 'mlp oi, p=1 c=1.2', net: () => mlp({ sizes: [9, 13, 7, 4], seed: 2, layout: 'oi', momentum: true }), p: 1, c: 1.2, includeBiases: false },
    { name: 'conv chain oihw, p=3', net: () => convChain({ channels: [3, 6, 5, 4], layout: 'oihw', seed: 3, momentum: true }), p: 3, c: 1.1, includeBiases: false },
    { name: 'vgg with BN', net: () => vgg({ inputSize: 8, stages: [[4, 6], [8]], hidden: 10, batchNorm: true, seed: 4, momentum: true }), p: 2, c: 1, includeBiases: true },
    { name: 'resnet18 width 4', net: () => resnet18({ width: 4, seed: 5, momentum: true }), p: 2, c: 1, includeBiases: false },
  ])('$name: up to 12 cycles agree to 1e-4 (tensors, companions, energy, scales)', async ({ net, p, c, includeBiases }) => {
    const a = net();
    // tolerance 0 stops only at an exactly unchanged energy: BN ResNets get there in 2 cycles (BN decouples the groups)
    const ref = balanceReference(a, { p, c, includeBiases, maxCycles: 12, tolerance: 0, omega: 1 });
    expect(ref.cycles).toBeGreaterThanOrEqual(2);
    const engine = await ENorm.create(a, { p, c, includeBiases, backend });
    expect(engine.backend.name).toBe(backend);
    const energies = Array.from({ length: ref.cycles }, () => { engine.cycle(); return engine.energy(); });
    engine.download();
    ref.plan.tensors.forEach((t, i) => {
      expect(maxRelDiff(t.data, ref.tensors[i]), `${t.layer} ${t.role}`).toBeLessThan(1e-4);
      t.companions.forEach((m, j) => expect(maxRelDiff(m, ref.companions[i][j])).toBeLessThan(1e-4));
    });
    energies.forEach((e, i) => expect(Math.abs(e - ref.energies[i]) / ref.energies[i]).toBeLessThan(1e-5));
    engine.scales().forEach((s, i) => expect(maxRelDiff(s.scales, ref.scales[i])).toBeLessThan(1e-4));
  });
});

describe('energy', () => {
  it.each(BACKENDS)('never increases from cycle to cycle with c = 1 (%s)', async (backend) => {
    for (const p of [1, 2, 3]) {
      const net = resnet18({ width: 8, seed: 11 + p });
      const report = await balance(net, { p, maxCycles: 40, tolerance: 0, backend });
      let prev = report.energyBefore;
      for (const e of report.energies) {
        expect(e).toBeLessThanOrEqual(prev * (1 + 1e-6));
        prev = e;
      }
      expect(report.energyAfter).toBeLessThan(report.energyBefore);
    }
  });

  it('with c != 1 the cycle descends the layer-weighted energy sum_k c^(-p(k-1)) ||W_k||^p (reference, exact)', () => {
    const p = 2;
    const c = 1.2;
    const net = mlp({ sizes: [12, 10, 9, 8, 5], bias: false, seed: 21 });
    let prev = Infinity;
    for (let n = 0; n < 30; n++) {
      const ref = balanceReference(net, { p, c, maxCycles: n, tolerance: 0 });
      const weighted = ref.tensors.reduce((s, t, k) => s + c ** (-p * k) * t.reduce((a, x) => a + Math.abs(x) ** p, 0), 0);
      expect(weighted).toBeLessThanOrEqual(prev * (1 + 1e-12));
      prev = weighted;
    }
  });
});

describe('uniqueness: function-equivalent networks balance to the same weights', () => {
  const cases: { name: string; make: () => Network; shape: number[] }[] = [
    { name: 'mlp with biases', make: () => mlp({ sizes: [10, 12, 9, 6], seed: 31 }), shape: [10] },
    { name: 'conv net with BN, pooling, flatten', make: () => vgg({ inputSize: 8, stages: [[5], [6]], hidden: 7, batchNorm: true, seed: 32 }), shape: [8, 8, 3] },
    { name: 'resnet18 width 2', make: () => resnet18({ width: 2, seed: 33 }), shape: [8, 8, 3] },
  ];
  it.each(cases)('$name', async ({ make, shape }) => {
    const a = make();
    const b = cloneNetwork(a);
    randomRescale(b, 99, 8);
    const x = randomInputs(shape, 3, 5);
    expect(maxRelDiff(run(b, x, 3, shape), run(a, x, 3, shape))).toBeLessThan(1e-5);
    const moved = planTensors(b).map((t, i) => maxRelDiff(t, planTensors(a)[i]));
    expect(Math.max(...moved)).toBeGreaterThan(0.1); // really rescaled

    const options = { maxCycles: 20000, tolerance: 1e-15 };
    const ra = balanceReference(a, options);
    const rb = balanceReference(b, options);
    ra.tensors.forEach((t, i) => expect(maxRelDiff(rb.tensors[i], t), ra.plan.tensors[i].layer).toBeLessThan(1e-4));

    // The float32 engine reaches the same point.
    await balance(a, { maxCycles: 3000, tolerance: 1e-9 });
    await balance(b, { maxCycles: 3000, tolerance: 1e-9 });
    const ta = planTensors(a);
    planTensors(b).forEach((t, i) => expect(maxRelDiff(t, ta[i])).toBeLessThan(1e-4));
  });
});

describe('fixed point', () => {
  it.each([
    { p: 2, c: 1 },
    { p: 2, c: 1.2 },
    { p: 1, c: 1.1 },
  ])('every unit satisfies ||out||_p = c ||in||_p at convergence (p=$p, c=$c)', ({ p, c }) => {
    const net = resnet18({ width: 2, seed: 41 });
    const ref = balanceReference(net, { p, c, maxCycles: 20000, tolerance: 1e-15 });
    expect(ref.converged).toBe(true);
    for (const g of ref.plan.groups) {
      const { incoming, outgoing } = groupCosts(g, ref.tensors, p);
      for (let i = 0; i < g.size; i++) {
        const ratio = outgoing[i] ** (1 / p) / (c * incoming[i] ** (1 / p));
        expect(Math.abs(ratio - 1), `${g.name}[${i}]`).toBeLessThan(1e-4);
      }
    }
  });
});

describe('robustness', () => {
  it('dead units stay at scale 1 with no NaN', async () => {
    const net = mlp({ sizes: [4, 5, 3], seed: 51 });
    const [d1, , d2] = net;
    if (d1.kind !== 'dense' || d2.kind !== 'dense') throw new Error('shape');
    for (let i = 0; i < 4; i++) d1.weight[i * 5 + 1] = 0; // unit 1: no incoming weights
    d1.bias![1] = 0;
    for (let o = 0; o < 3; o++) d2.weight[3 * 3 + o] = 0; // unit 3: no outgoing weights
    const report = await balance(net, { maxCycles: 50 });
    expect(report.scales[0].scales[1]).toBe(1);
    expect(report.scales[0].scales[3]).toBe(1);
    for (const l of net) if (l.kind === 'dense') expect(l.weight.every(Number.isFinite)).toBe(true);
  });

  it.each(BACKENDS)('weights between 1e-30 and 1e30 neither overflow nor flush to zero (%s)', async (backend) => {
    const rng = mulberry32(61);
    const net: Network = [
      { kind: 'dense', weight: normalArray(6 * 5, 1e-30, rng), shape: [6, 5] },
      { kind: 'relu' },
      { kind: 'dense', weight: normalArray(5 * 4, 1e30, rng), shape: [5, 4] },
      { kind: 'relu' },
      { kind: 'dense', weight: normalArray(4 * 3, 1, rng), shape: [4, 3] },
    ];
    const x = randomInputs([6], 4, 62);
    const before = run(net, x, 4, [6]);
    const report = await balance(net, { maxCycles: 200, backend });
    expect(Number.isFinite(report.energyBefore)).toBe(true);
    expect(report.energyBefore).toBeGreaterThan(1e59);
    expect(report.energyAfter).toBeLessThan(1e-3 * report.energyBefore);
    expect(report.energyAfter).toBeGreaterThan(0);
    expect(report.scales[0].scales.every((d) => d > 1e20)).toBe(true); // the tiny layer was really rescaled
    expect(maxRelDiff(run(net, x, 4, [6]), before)).toBeLessThan(1e-5);
  });

  it('a rescaling that overflows float32 throws E_OVERFLOW and changes nothing', async () => {
    const net = mlp({ sizes: [4, 5, 3], seed: 71, momentum: true });
    const before = snapshot(net);
    const err = await balance(net, { c: 1e-80, maxCycles: 1 }).catch((e) => e);
    expect(err).toBeInstanceOf(ENormError);
    expect(err.code).toBe('E_OVERFLOW');
    expect(err.message).toMatch(/layer 'dense1'/);
    expect(snapshot(net)).toEqual(before);
  });
});

describe.each(['simd', 'scalar', 'js'] as BackendName[])('%s backend: step() on non-finite input (no separate upload scan)', (backend) => {
  // step() copies in without scanning and lets materialise()'s fused check find a NaN / Inf; the
  // error must still be upload()'s E_NONFINITE for an input and E_OVERFLOW only for a real overflow.
  /** Sets one element of a[i] to x and returns the undo. */
  const spoilAt = (a: Float32Array, i: number, x: number) => { const was = a[i]; a[i] = x; return () => { a[i] = was; }; };
  type Arrays = { weight: Float32Array; bias: Float32Array; companions: { weight: Float32Array } };
  const cases: [string, (net: Network) => () => void, RegExp][] = [
    // net: dense1, relu1, dense2, relu2, dense3, relu3, dense4
    ['a NaN hidden weight', (net) => spoilAt((net[2] as unknown as Arrays).weight, 7, NaN), /^layer 'dense2' weight\[7\] is NaN before rescaling/],
    ['an Inf first-layer weight', (net) => spoilAt((net[0] as unknown as Arrays).weight, 3, -Infinity), /^layer 'dense1' weight\[3\] is -Infinity before rescaling/],
    ['a NaN in a momentum buffer', (net) => spoilAt((net[4] as unknown as Arrays).companions.weight, 11, NaN), /^layer 'dense3' companion 0 of weight\[11\] is NaN before rescaling/],
    ['a NaN bias', (net) => spoilAt((net[0] as unknown as Arrays).bias, 2, NaN), /^layer 'dense1' bias\[2\] is NaN before rescaling/],
  ];
  it.each(cases)('%s: E_NONFINITE naming it, arrays untouched, scales and maxScaleChange as before; put back, the next step is exact', async (_, spoil, message) => {
    const make = () => mlp({ sizes: [6, 8, 8, 8, 3], seed: 91, momentum: true });
    const net = make();
    const engine = await ENorm.create(net, { backend });
    engine.step();
    const scales = engine.scales();
    const change = engine.maxScaleChange();
    const undo = spoil(net);
    const before = snapshot(net);
    const err = (() => { try { engine.step(); return null; } catch (e) { return e as ENormError; } })();
    expect(err?.code).toBe('E_NONFINITE');
    expect(err?.message).toMatch(message);
    expect(snapshot(net)).toEqual(before);
    expect(engine.scales()).toEqual(scales);
    expect(engine.maxScaleChange()).toBe(change);
    // The value put back, the same engine steps exactly as one that never saw it.
    const fresh = make();
    const twin = await ENorm.create(fresh, { backend });
    twin.step();
    twin.step();
    undo();
    engine.step();
    expect(snapshot(net)).toEqual(snapshot(fresh));
    expect(engine.scales()).toEqual(twin.scales());
    engine.dispose();
    twin.dispose();
  });

  it('an overflow on finite input is still E_OVERFLOW naming the tensor, arrays and scales untouched', async () => {
    const net = mlp({ sizes: [4, 5, 3], seed: 71, momentum: true });
    const engine = await ENorm.create(net, { backend, c: 1e-80 });
    const before = snapshot(net);
    const scales = engine.scales();
    const err = (() => { try { engine.step(); return null; } catch (e) { return e as ENormError; } })();
    expect(err?.code).toBe('E_OVERFLOW');
    expect(err?.message).toMatch(/layer 'dense1'/);
    expect(snapshot(net)).toEqual(before);
    expect(engine.scales()).toEqual(scales);
    engine.dispose();
  });
});

describe('companions (momentum buffers)', () => {
  it('weight x companion is unchanged elementwise', async () => {
    const net = resnet18({ width: 4, seed: 81, momentum: true });
    const products = planProducts(net);
    await balance(net, { maxCycles: 30 });
    const after = planProducts(net);
    after.forEach((p, i) => expect(maxRelDiff(p, products[i])).toBeLessThan(1e-5));
  });
});

function planProducts(net: Network): Float64Array[] {
  const plan = balanceReference(net, { maxCycles: 0 }).plan;
  return plan.tensors.flatMap((t) => t.companions.map((m) => Float64Array.from(t.data, (w, i) => w * m[i])));
}

describe('ENorm engine', () => {
  it('step() runs one cycle on the network arrays: five steps are five cycles of balance', async () => {
    const net = mlp({ sizes: [8, 6, 6, 3], seed: 91, momentum: true });
    const twin = cloneNetwork(net);
    const engine = await ENorm.create(net, { c: 1.2 });
    for (let i = 0; i < 5; i++) engine.step();
    const report = await balance(twin, { c: 1.2, maxCycles: 5, tolerance: 0 });
    expect(report.cycles).toBe(5);
    expect(report.omega).toBe(1); // c != 1: no over-relaxation
    // Each step materialises its scales (one float32 rounding per weight per step); balance rounds
    // the weights once, at the end: a few float32 ulps apart (docs/ALGORITHM.md 3b).
    const a = planTensors(net);
    planTensors(twin).forEach((t, i) => expect(maxRelDiff(a[i], t)).toBeLessThan(1e-6));
  });

  it('picks up weights changed between steps (as after an SGD update)', async () => {
    const net = mlp({ sizes: [8, 6, 3], seed: 92 });
    const engine = await ENorm.create(net);
    engine.step();
    const first = net[0];
    if (first.kind !== 'dense') throw new Error('shape');
    first.weight.fill(0.5);
    engine.step();
    const twin = cloneNetwork(net);
    // the engine must have read 0.5s: one more step from here equals a fresh engine's step
    engine.step();
    const fresh = await ENorm.create(twin);
    fresh.step();
    expect(Array.from(first.weight)).toEqual(Array.from((twin[0] as typeof first).weight));
  });
});

describe('function preservation per layer kind (float32 engine, 1e-5 relative)', () => {
  const kinds: { name: string; spec: Partial<ArchitectureSpec> }[] = [
    { name: 'dense io + relu + bias', spec: { dense: ['dense-relu', 'dense-relu'] } },
    { name: 'dense oi (PyTorch)', spec: { torch: true, dense: ['dense-relu', 'dense-bias-free'] } },
    { name: 'leaky-relu and identity', spec: { dense: ['dense-leaky', 'dense-identity'] } },
    { name: 'tanh barrier', spec: { dense: ['dense-relu', 'dense-tanh', 'dense-relu'] } },
    { name: 'dense residual add', spec: { dense: ['dense-relu', 'dense-residual'] } },
    { name: 'dense concat', spec: { dense: ['dense-concat', 'dense-relu'] } },
    { name: 'conv2d hwio + flatten channels-last', spec: { conv: ['conv', 'relu', 'conv'], neck: 'flatten', dense: ['dense-relu'] } },
    { name: 'conv2d oihw + flatten channels-first', spec: { torch: true, conv: ['conv', 'relu', 'conv'], neck: 'flatten', dense: ['dense-relu'] } },
    { name: 'strided conv, valid/same padding', spec: { conv: ['conv-s2', 'relu', 'conv'], neck: 'global-avg-pool' } },
    { name: 'depthwise hwcm', spec: { conv: ['conv', 'relu', 'depthwise', 'relu', 'conv'], neck: 'global-avg-pool' } },
    { name: 'depthwise oihw', spec: { torch: true, conv: ['conv', 'relu', 'depthwise', 'relu', 'conv'], neck: 'flatten' } },
    { name: 'batch norm (scale on gamma/beta)', spec: { conv: ['conv', 'bn', 'relu', 'conv', 'bn', 'relu'], neck: 'flatten', dense: ['dense-relu'] } },
    { name: 'max-pool, avg-pool, dropout', spec: { conv: ['conv', 'relu', 'max-pool', 'conv', 'dropout', 'avg-pool'], neck: 'flatten' } },
    { name: 'global-max-pool', spec: { conv: ['conv', 'relu', 'conv'], neck: 'global-max-pool', dense: ['dense-relu'] } },
    { name: 'residual blocks with projection', spec: { conv: ['conv', 'relu', 'residual', 'residual-proj'], neck: 'global-avg-pool' } },
    { name: 'concat of conv branches', spec: { conv: ['conv', 'relu', 'concat', 'conv'], neck: 'flatten' } },
  ];
  it.each(kinds)('$name', async ({ spec }) => {
    for (const residual of ['complete', 'blocks'] as const) {
      const { net, shape } = buildArchitecture({ seed: 7, torch: false, conv: [], neck: 'flatten', dense: [], momentum: true, ...spec });
      const x = randomInputs(shape, 8, 3);
      const before = run(net, x, 8, shape);
      const report = await balance(net, { maxCycles: 30, residual });
      expect(report.groups).toBeGreaterThan(0);
      expect(report.energyAfter).toBeLessThan(report.energyBefore);
      expect(maxRelDiff(run(net, x, 8, shape), before)).toBeLessThan(1e-5);
    }
  });
});

describe('function preservation on ResNet-18 (full width)', () => {
  it('outputs agree to 1e-5 relative after balancing; stream groups span blocks', async () => {
    const net = resnet18({ seed: 101 });
    const shape = [16, 16, 3];
    const x = randomInputs(shape, 2, 102);
    const before = run(net, x, 2, shape);
    const report = await balance(net, { maxCycles: 10, tolerance: 0 });
    expect(maxRelDiff(run(net, x, 2, shape), before)).toBeLessThan(1e-5);
    expect(report.energyAfter).toBeLessThan(report.energyBefore);
    // 8 blocks with an inner unit group each, 4 residual streams (one per stage)
    const streams = report.scales.filter((s) => s.layers.length > 1);
    expect(streams).toHaveLength(4);
    expect(report.groups).toBe(12);
    // inner units: two blocks per stage; stream units: one stream per stage
    expect(report.units).toBe(2 * (64 + 128 + 256 + 512) + (64 + 128 + 256 + 512));
  });
});
