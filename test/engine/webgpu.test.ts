// The WGSL kernels and the engine on a WebGPU device (Dawn; SwiftShader without a GPU).
// Sums are f32 on the device, so float64 comparisons use relative tolerances, not bits.
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { ENorm } from '../../src/engine/enorm.js';
import { prepare } from '../../src/plan/prepare.js';
import { CrossMode } from '../../src/engine/backend.js';
import { WebGPUBackend } from '../../src/engine/webgpu/backend.js';
import { DeviceStep } from '../../src/webgpu.js';
import { isENormError, type ENormError } from '../../src/errors.js';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Network } from '../../src/network/layers.js';
import { balanceReference } from '../../src/reference/reference.js';
import { architectureArb } from '../helpers/architecture-arbs.js';
import { buildArchitecture, type ConvOp, type DenseOp } from '../helpers/architectures.js';
import { expectBits, expectRel, naiveAccumulateScaled, naiveScale, naiveScaleBoth, naiveSolve, randomFusedView } from '../helpers/naive-kernels.js';
import { maxRelDiff, randomInputs, run, withFloat64Tensors } from '../helpers/nets.js';
import { mulberry32, randomFloat32 } from '../helpers/random.js';
import { gpuDevice, readBuffer } from '../helpers/webgpu.js';

let device: GPUDevice;
beforeAll(async () => {
  device = await gpuDevice();
});

/** A backend with one region of `bytes`, plus host helpers to fill and read it. */
async function arena(bytes: number) {
  const gpu = await WebGPUBackend.create(device);
  const base = gpu.reserve(bytes);
  const put = (ptr: number, a: Float32Array) => device.queue.writeBuffer(gpu.memory, ptr, a as Float32Array<ArrayBuffer>);
  const flush = () => {
    const encoder = device.createCommandEncoder();
    gpu.encode(encoder);
    device.queue.submit([encoder.finish()]);
  };
  const f32 = async (ptr: number, n: number) => new Float32Array(await readBuffer(device, gpu.memory, ptr, 4 * n));
  /** Accumulators: the first f32 of each 8-byte slot. */
  const acc = async (ptr: number, n: number) => Float64Array.from((await f32(ptr, 2 * n)).filter((_, k) => k % 2 === 0));
  const putAcc = (ptr: number, values: ArrayLike<number>) => put(ptr, Float32Array.from({ length: 2 * values.length }, (_, k) => (k % 2 ? 0 : values[k >> 1])));
  return { gpu, k: gpu.kernels, base, put, putAcc, flush, f32, acc };
}

const PS = [1, 2, 3, Infinity];
const where = (v: object, rest: Record<string, number>) => `${Object.entries(rest).map(([k, x]) => `${k} ${x}`).join(' ')} view ${JSON.stringify(v)}`;

/** Runs `check`, prefixing its failure with the case it was testing. */
async function labelled(label: string, check: () => Promise<void> | void) {
  try {
    await check();
  } catch (e) {
    throw new Error(`${label}: ${(e as Error).message}`);
  }
}

/** Sums are f32 on the device: rel 1e-5 for p-sums; a max of f32 values is one of them, exact. */
function expectSums(got: Float64Array, want: Float64Array, p: number) {
  if (p === Infinity) expect(Array.from(got)).toEqual(Array.from(want));
  else expectRel(got, want, 1e-5);
}

/**
 * expectRel, where Inf and 0 (a value beyond the f32 range, stored as such) must be the same value,
 * and a subnormal may be 0 (WGSL lets a device flush subnormals).
 */
function expectRelOrSame(got: Float32Array, want: Float32Array, tol: number) {
  const exact = (x: number) => x === 0 || !Number.isFinite(x);
  const flushed = (i: number) => got[i] === 0 && Math.abs(want[i]) < 2 ** -126;
  expect(Array.from(got).map((x, i) => (exact(want[i]) ? x : 'rel')), 'Inf and 0').toEqual(Array.from(want, (x) => (exact(x) ? x : 'rel')));
  const keep = (_: number, i: number) => !exact(want[i]) && !flushed(i);
  expectRel(got.filter(keep), want.filter(keep), tol);
}

describe('WGSL kernels against float64', () => {
  it('accumulateScaled: the weighted sums in every mode, a, b and p, the tensor unchanged', async () => {
    const m = await arena(4 << 20);
    const rng = mulberry32(7);
    const [tp, sp, ap] = [m.base, m.base + (1 << 20), m.base + (2 << 20)];
    let cases = 0;
    for (const mode of [CrossMode.outer, CrossMode.inner, CrossMode.unit])
      for (const a of [1, 2, 3])
        for (const b of [1, 3, 5, 12])
          for (const p of PS) {
            const v = randomFusedView(rng);
            const t = randomFloat32(v.length, rng, 3);
            const s = randomFloat32(v.count, rng, 2);
            const acc0 = Float64Array.from({ length: b }, () => Math.fround(rng()));
            m.put(tp, t);
            m.put(sp, s);
            m.putAcc(ap, acc0);
            m.k.accumulateScaled(tp + 4 * v.start, v.outer, v.outerStride, v.count, v.inner, sp, ap, p, mode, a, b);
            m.flush();
            const want = naiveAccumulateScaled(t, v, s, acc0, p, mode, a, b);
            const got = await m.acc(ap, b);
            const tensor = await m.f32(tp, v.length);
            await labelled(where(v, { mode, a, b, p }), () => {
              expectSums(got, want.acc, p);
              expectBits(tensor, t);
            });
            cases++;
          }
    expect(cases).toBe(144);
  });

  it('accumulate sums the unscaled view per unit; scale is the exact f32 product (= the host kernels bit for bit)', async () => {
    const m = await arena(4 << 20);
    const rng = mulberry32(11);
    const [tp, sp, ap] = [m.base, m.base + (1 << 20), m.base + (2 << 20)];
    for (let k = 0; k < 24; k++) {
      const p = PS[k % PS.length];
      const v = randomFusedView(rng);
      const t = randomFloat32(v.length, rng, 3);
      const s = randomFloat32(v.count, rng, 2);
      const acc0 = Float64Array.from({ length: v.count }, () => Math.fround(rng()));
      m.put(tp, t);
      m.put(sp, s);
      m.putAcc(ap, acc0);
      m.k.accumulate(tp + 4 * v.start, v.outer, v.outerStride, v.count, v.inner, ap, p);
      m.k.scale(tp + 4 * v.start, v.outer, v.outerStride, v.count, v.inner, sp);
      m.flush();
      // accumulate is accumulateScaled by ones (x * 1 is exact) over the view's own units.
      const want = naiveAccumulateScaled(t, v, new Float32Array(v.count).fill(1), acc0, p, CrossMode.unit, 1, v.count);
      const got = await m.acc(ap, v.count);
      const tensor = await m.f32(tp, v.length);
      await labelled(where(v, { p }), () => {
        expectSums(got, want.acc, p);
        expectBits(tensor, naiveScale(t, v, s));
      });
    }
  });

  it('scaleBoth stores f32(w * f32(s[i] * g[(o / a) % b])) bit for bit, and nothing outside the view', async () => {
    const m = await arena(4 << 20);
    const rng = mulberry32(13);
    const [tp, sp, gp] = [m.base, m.base + (1 << 20), m.base + (2 << 20)];
    let cases = 0;
    for (const a of [1, 2, 3])
      for (const b of [1, 3, 5, 12])
        for (let k = 0; k < 3; k++) {
          const v = randomFusedView(rng);
          const t = randomFloat32(v.length, rng, 3);
          const s = randomFloat32(v.count, rng, 2);
          const g = randomFloat32(b, rng, 2);
          m.put(tp, t);
          m.put(sp, s);
          m.put(gp, g);
          expect(m.k.scaleBoth(tp + 4 * v.start, v.outer, v.outerStride, v.count, v.inner, sp, gp, a, b)).toBeUndefined();
          m.flush();
          const tensor = await m.f32(tp, v.length);
          await labelled(where(v, { a, b }), () => expectBits(tensor, naiveScaleBoth(t, v, s, g, a, b).t));
          cases++;
        }
    expect(cases).toBe(36);
  });

  it('solve: logSigma, sigma, sigmaInv, d, dInv as float64 for every p and omega, dead units keep sigma with d = 1; energy is left unwritten', async () => {
    const m = await arena(1 << 16);
    const n = 600; // more than one workgroup
    const rng = mulberry32(9);
    const sums = Float64Array.from({ length: 4 * n }, () => Math.fround(10 ** (rng() * 8 - 4)));
    const dead = [3, 5, 7, 11];
    sums[3] = sums[2 * n + 3] = 0; // A = 0
    sums[n + 5] = sums[3 * n + 5] = 0; // B = 0
    sums[7] = Infinity; // A not finite: x = 0
    sums[3 * n + 11] = Infinity; // B not finite: x = Inf
    for (let i = 20; i < 40; i++) sums[2 * n + i] = 0; // Ao = 0, A = Af
    // The device keeps log2 sigma in f32 (the first word of each 8-byte slot); naiveSolve starts
    // from the same scales, as natural logs in f64.
    const log2Sigma0 = Float32Array.from({ length: n }, () => Math.log2(0.5 + 1.5 * rng()));
    const u = Float64Array.from(log2Sigma0, (x) => x * Math.LN2);
    const [sums0, logSigma, sg, sgInv, d, dInv, energy] = [0, 32, 40, 44, 48, 52, 56].map((x) => m.base + x * n);
    m.putAcc(sums0, sums);
    let cases = 0;
    // c = 1e-80 (0 in f32): x = (B / A)^(1/(2p)) * 1e40 is beyond f32, next is Inf, or finite for omega = 0.5.
    for (const p of PS)
      for (const c of [1, 1.2, 0.8, 1e-80])
        for (const omega of [1, 1.6, 0.5]) {
          m.putAcc(logSigma, log2Sigma0);
          m.putAcc(energy, [7]);
          m.k.solve(sums0, n, p, c, omega, logSigma, sg, sgInv, d, dInv, energy);
          m.flush();
          const want = naiveSolve(sums, n, p, c, omega, u);
          const got = { sigma: await m.f32(sg, n), sigmaInv: await m.f32(sgInv, n), d: await m.f32(d, n), dInv: await m.f32(dInv, n) };
          const log2Sigma = Float32Array.from(await m.acc(logSigma, n));
          await labelled(`p ${p} c ${c} omega ${omega}`, async () => {
            for (const key of ['sigma', 'sigmaInv', 'd', 'dInv'] as const) await labelled(key, () => expectRelOrSame(got[key], want[key], 1e-5));
            // log2 sigma in f32: within 1e-6 of the size of its terms (|log2 A|, |log2 B| < 14, |h| < 133).
            const e = p === Infinity ? 0.5 : 1 / (2 * p);
            log2Sigma.forEach((x, i) => {
              const size = 1 + Math.abs(log2Sigma0[i]) + omega * (Math.abs(log2Sigma0[i]) + 14 * e + Math.abs(Math.log2(c)) / 2);
              if (!(Math.abs(x - want.logSigma[i] / Math.LN2) <= 1e-6 * size)) throw new Error(`log2 sigma[${i}]: got ${x}, want ${want.logSigma[i] / Math.LN2}`);
            });
            // Dead units: log2 sigma unchanged, d = dInv = 1 exactly, sigma = exp2(log2 sigma) = the starting sigma.
            expectBits(Float32Array.from(dead, (i) => log2Sigma[i]), Float32Array.from(dead, (i) => log2Sigma0[i]));
            expect(dead.flatMap((i) => [got.d[i], got.dInv[i]])).toEqual([1, 1, 1, 1, 1, 1, 1, 1]);
            expectRel(Float32Array.from(dead, (i) => got.sigma[i]), Float32Array.from(dead, (i) => 2 ** log2Sigma0[i]), 1e-6);
            expect(Array.from(await m.acc(energy, 1))).toEqual([7]);
          });
          cases++;
        }
    expect(cases).toBe(48);
  });

  it('fill sets n words, zero clears, copy moves the bits; scanFinite finds the first NaN or Inf', async () => {
    const m = await arena(1 << 16);
    const rng = mulberry32(19);
    const n = 600;
    const before = randomFloat32(n + 2, rng);
    m.put(m.base, before);
    m.k.fill(m.base + 4, n, -1.5);
    m.flush();
    expectBits(await m.f32(m.base, n + 2), Float32Array.from(before, (x, k) => (k >= 1 && k <= n ? -1.5 : x)));
    m.k.zero(m.base + 4, 4 * n);
    m.flush();
    expectBits(await m.f32(m.base, n + 2), Float32Array.from(before, (x, k) => (k >= 1 && k <= n ? 0 : x)));

    const src = randomFloat32(700, rng);
    src.set([-0, 1e-40, Infinity, 2 ** -126], 100); // signed zero, subnormal, Inf, smallest normal
    m.put(m.base + 8192, src);
    m.put(m.base + 16384, new Float32Array(702).fill(3));
    m.k.copy(m.base + 16388, m.base + 8192, 4 * 700);
    m.flush();
    expectBits(await m.f32(m.base + 16384, 702), Float32Array.of(3, ...src, 3));

    const t = randomFloat32(1000, rng);
    t[700] = NaN;
    t[900] = -Infinity;
    const u = randomFloat32(300, rng);
    m.put(m.base, t);
    m.put(m.base + 4096, u);
    const s0 = m.gpu.scanFinite(m.base, 1000);
    const s1 = m.gpu.scanFinite(m.base + 4096, 300);
    const s2 = m.gpu.scanFinite(m.base + 4 * 800, 200); // starts past the NaN: finds the -Inf at 100
    m.flush();
    expect([s0, s1, s2]).toEqual([0, 1, 2]);
    expect(Array.from(await m.gpu.readStatus())).toEqual([700, -1, 100]);
  });

  it('empty views and counts record nothing; reserve after use and oversize networks are refused', async () => {
    const m = await arena(1024);
    const data = randomFloat32(256, mulberry32(23));
    m.put(m.base, data);
    m.k.accumulate(m.base, 0, 4, 4, 1, m.base + 512, 2);
    m.k.accumulateScaled(m.base, 2, 4, 4, 0, m.base + 512, m.base + 768, 2, CrossMode.outer, 1, 2);
    m.k.scale(m.base, 2, 4, 0, 1, m.base + 512);
    m.k.scaleBoth(m.base, 0, 4, 4, 1, m.base + 512, m.base + 768, 1, 1);
    m.k.solve(m.base, 0, 2, 1, 1, m.base + 448, m.base + 512, m.base + 576, m.base + 640, m.base + 704, m.base + 768);
    m.k.fill(m.base, 0, 5);
    m.k.zero(m.base, 0);
    m.k.copy(m.base, m.base + 512, 0);
    m.flush(); // an empty pass
    expectBits(await m.f32(m.base, 256), data);
    expect(() => m.gpu.reserve(16)).toThrow(/already in use/);
    const big = await WebGPUBackend.create(device);
    big.reserve(device.limits.maxStorageBufferBindingSize + 16);
    expect(() => big.memory).toThrow(/maxStorageBufferBindingSize/);
  });
});

const CONV_OPS: ConvOp[] = ['conv', 'conv-s2', 'depthwise', 'bn', 'relu', 'leaky', 'max-pool', 'avg-pool', 'residual', 'residual-proj', 'concat', 'tanh'];
const DENSE_OPS: DenseOp[] = ['dense-relu', 'dense-leaky', 'dense-identity', 'dense-residual', 'dense-concat', 'dense-bias-free'];
const specArb = architectureArb({ convOps: CONV_OPS, denseOps: DENSE_OPS, maxConv: 5, maxDense: 3, necks: ['flatten', 'global-avg-pool'] });
const CYCLES = 5;

/** CYCLES cycles of the one driver on the device; returns the plan's tensors and companions. */
async function cyclesOnDevice(net: Network, options: { p: number; c: number; includeBiases: boolean; residual: 'complete' | 'blocks' }) {
  const gpu = await WebGPUBackend.create(device);
  const engine = ENorm.onDevice(net, gpu, options);
  // The device engine's plan keeps no host arrays; the same plan, with them, for the copy-in.
  const { tensors } = prepare(net, options).plan;
  tensors.forEach((t, i) => {
    device.queue.writeBuffer(gpu.memory, engine.tensorPointers[i], t.data as Float32Array<ArrayBuffer>);
    t.companions.forEach((m, j) => device.queue.writeBuffer(gpu.memory, engine.companionPointers[i][j], m as Float32Array<ArrayBuffer>));
  });
  engine.discardSums();
  for (let k = 0; k < CYCLES; k++) engine.cycle();
  engine.materialise(); // the cycles only read: apply their scales
  const encoder = device.createCommandEncoder();
  gpu.encode(encoder);
  device.queue.submit([encoder.finish()]);
  const read = async (ptr: number, n: number) => new Float32Array(await readBuffer(device, gpu.memory, ptr, 4 * n));
  const out = await Promise.all(tensors.map(async (t, i) => ({
    data: await read(engine.tensorPointers[i], t.data.length),
    companions: await Promise.all(t.companions.map((m, j) => read(engine.companionPointers[i][j], m.length))),
  })));
  gpu.destroy();
  return { engine, out };
}

describe('the engine on WebGPU', () => {
  it('random architectures: same tensors and companions as the float64 reference, function preserved', async () => {
    let runs = 0;
    let balanced = 0;
    await fc.assert(
      fc.asyncProperty(specArb, fc.constantFrom(1, 2, 3), fc.constantFrom(1, 1.2), fc.boolean(), fc.constantFrom('complete' as const, 'blocks' as const),
        async (spec, p, c, includeBiases, residual) => {
          const options = { p, c, includeBiases, residual };
          const { net, shape } = buildArchitecture(spec);
          const ref = balanceReference(net, { ...options, maxCycles: CYCLES, tolerance: 0 });
          const { engine, out } = await cyclesOnDevice(net, options);
          runs++;
          if (engine.plan.groups.length > 0) balanced++;
          expect(engine.plan.groups.length).toBe(ref.plan.groups.length);
          out.forEach(({ data, companions }, i) => {
            const t = engine.plan.tensors[i];
            expect(maxRelDiff(data, ref.tensors[i]), `${t.layer} ${t.role}`).toBeLessThan(1e-4);
            companions.forEach((m, j) => expect(maxRelDiff(m, ref.companions[i][j]), `${t.layer} ${t.role} companion`).toBeLessThan(1e-4));
          });
          // The device weights compute the same function (float64 forward on them).
          const x = randomInputs(shape, 3, spec.seed ^ 0x77);
          const balancedNet = withFloat64Tensors(net, out.map((o) => Float64Array.from(o.data)), residual);
          expect(maxRelDiff(run(balancedNet, x, 3, shape), run(net, x, 3, shape)), 'output').toBeLessThan(1e-4);
        }),
      { numRuns: 40 },
    );
    expect(balanced).toBeGreaterThan(runs / 2);
  });

  it('p = Infinity: random architectures agree with the Wasm engine and the float64 reference', async () => {
    let balanced = 0;
    await fc.assert(
      fc.asyncProperty(specArb, fc.constantFrom(1, 1.2), fc.boolean(), async (spec, c, includeBiases) => {
        const options = { p: Infinity, c, includeBiases, residual: 'complete' as const };
        const { net } = buildArchitecture(spec);
        const ref = balanceReference(net, { ...options, maxCycles: CYCLES, tolerance: 0 });
        const wasm = await ENorm.create(net, { ...options, backend: 'simd' });
        for (let k = 0; k < CYCLES; k++) wasm.cycle();
        wasm.materialise();
        const { engine, out } = await cyclesOnDevice(net, options);
        if (engine.plan.groups.length > 0) balanced++;
        // The device solves d in f32 (the host in f64, then rounds): close, not the same bits.
        out.forEach(({ data }, i) => {
          const host = new Float32Array((wasm.backend as { buffer: ArrayBuffer }).buffer, wasm.tensorPointers[i], data.length);
          expect(maxRelDiff(data, host), `${engine.plan.tensors[i].layer} vs wasm`).toBeLessThan(1e-5);
          expect(maxRelDiff(data, ref.tensors[i]), `${engine.plan.tensors[i].layer} vs reference`).toBeLessThan(1e-4);
        });
        wasm.dispose();
      }),
      { numRuns: 25 },
    );
    expect(balanced).toBeGreaterThan(8);
  });

  it('host-only methods say so on a device engine', async () => {
    const { net } = buildArchitecture({ seed: 3, torch: false, conv: [], neck: 'flatten', dense: ['dense-relu', 'dense-relu'], momentum: false });
    const engine = ENorm.onDevice(net, await WebGPUBackend.create(device));
    for (const call of [() => engine.upload(), () => engine.download(), () => engine.energy(), () => engine.step(), () => engine.scales()]) {
      expect(call).toThrow(/needs a host backend/);
    }
  });
});

/** A STORAGE | COPY_SRC | COPY_DST buffer holding `a`. */
function bufferWith(a: Float32Array): GPUBuffer {
  const b = device.createBuffer({ size: Math.max(4, a.byteLength), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(b, 0, a as Float32Array<ArrayBuffer>);
  return b;
}

/** The network's arrays in the step's slot order, found through keyOf (plan tensor, then its companions). */
async function stepWithArrays(net: Network, options: Parameters<typeof DeviceStep.create>[2] = {}) {
  const step = await DeviceStep.create(net, device, { ...options, keyOf: (array: Float32Array) => Float32Array.from(array) });
  return { step, arrays: step.slots.map((s) => s.key) };
}

/** record() from sources to targets, submitted, and its status. */
async function recordOnce(step: DeviceStep<unknown>, sources: GPUBuffer[], targets: GPUBuffer[]) {
  const encoder = device.createCommandEncoder();
  const pending = step.record(encoder, sources, targets);
  device.queue.submit([encoder.finish()]);
  return pending.status();
}

const readAll = (buffers: GPUBuffer[], lengths: number[]) => Promise.all(buffers.map(async (b, k) => new Float32Array(await readBuffer(device, b, 0, 4 * lengths[k]))));

describe('DeviceStep: one checked cycle recorded into a command encoder', () => {
  const denseNet = () => buildArchitecture({ seed: 5, torch: false, conv: ['conv', 'bn', 'relu'], neck: 'flatten', dense: ['dense-relu', 'dense-residual'], momentum: true });

  it('CYCLES records, ping-pong between two buffer sets, match the float64 reference; the sources keep their values', async () => {
    const { net } = denseNet();
    const options = { p: 2, c: 1.2, includeBiases: false, residual: 'complete' as const };
    const ref = balanceReference(net, { ...options, maxCycles: CYCLES, tolerance: 0 });
    const { step, arrays } = await stepWithArrays(net, options);
    expect(step.slots.map((s) => s.length)).toEqual(arrays.map((a) => a.length));
    expect(step.slots.filter((s) => s.companion >= 0).length).toBeGreaterThan(0);
    const a = arrays.map(bufferWith);
    const b = arrays.map((x) => bufferWith(new Float32Array(x.length)));
    for (let k = 0; k < CYCLES; k++) {
      const [from, to] = k % 2 ? [b, a] : [a, b];
      expect(await recordOnce(step, from, to)).toEqual({ ok: true });
      if (k === 0) expect(await readAll(a, step.slots.map((s) => s.length))).toEqual(arrays); // sources untouched
    }
    const out = await readAll(CYCLES % 2 ? b : a, step.slots.map((s) => s.length));
    step.slots.forEach((s, k) => {
      const want = s.companion < 0 ? ref.tensors[s.tensor] : ref.companions[s.tensor][s.companion];
      expect(maxRelDiff(out[k], want), `${s.layer} ${s.name}`).toBeLessThan(1e-4);
    });
    step.destroy();
  });

  it('a NaN input is E_NONFINITE naming layer, tensor and index; an overflow is E_OVERFLOW; the sources are unchanged', async () => {
    const { net } = denseNet();
    const { step, arrays } = await stepWithArrays(net);
    const k = step.slots.findIndex((s) => s.name === 'weight' && s.length > 7);
    const broken = arrays.map((x, i) => (i === k ? Float32Array.from(x, (v, j) => (j === 7 ? NaN : v)) : x));
    const sources = broken.map(bufferWith);
    const targets = arrays.map((x) => bufferWith(new Float32Array(x.length)));
    const bad = await recordOnce(step, sources, targets);
    expect(bad.ok).toBe(false);
    const e = (bad as { error: ENormError }).error;
    expect(isENormError(e)).toBe(true);
    expect(e.code).toBe('E_NONFINITE');
    expect(e.details).toMatchObject({ layer: step.slots[k].layer, tensor: 'weight', index: 7 });
    expect(e.message).toMatch(new RegExp(String.raw`layer '${step.slots[k].layer}' weight\[7\] is not finite before rescaling`));
    expect((await readAll(sources, step.slots.map((s) => s.length)))[k][7]).toBeNaN();
    step.destroy();

    const over = await stepWithArrays(net, { c: 1e-80 });
    const status = await recordOnce(over.step, over.arrays.map(bufferWith), over.arrays.map((x) => bufferWith(new Float32Array(x.length))));
    expect(status.ok).toBe(false);
    expect((status as { error: ENormError }).error.code).toBe('E_OVERFLOW');
    expect((status as { error: ENormError }).error.message).toMatch(/became non-finite while rescaling/);
    // The next record works again (fresh schedule, clean status).
    const ok = await stepWithArrays(net);
    expect(await recordOnce(ok.step, ok.arrays.map(bufferWith), ok.arrays.map((x) => bufferWith(new Float32Array(x.length))))).toEqual({ ok: true });
    expect(await recordOnce(over.step, over.arrays.map(bufferWith), over.arrays.map((x) => bufferWith(new Float32Array(x.length))))).toMatchObject({ ok: false });
    over.step.destroy();
    ok.step.destroy();
  });

  it('refuses buffers that do not match the slots (E_SHAPE), a record before the last status (E_STATE), a lost device (E_DEVICE)', async () => {
    const { net } = denseNet();
    const { step, arrays } = await stepWithArrays(net);
    const full = arrays.map(bufferWith);
    const encoder = device.createCommandEncoder();
    const code = (fn: () => unknown) => { try { fn(); } catch (e) { return (e as ENormError).code; } return 'none'; };
    expect(code(() => step.record(encoder, full.slice(1), full))).toBe('E_SHAPE');
    const small = full.map((b, k) => (k === 2 ? bufferWith(new Float32Array(1)) : b));
    expect(code(() => step.record(encoder, full, small))).toBe('E_SHAPE');
    const pending = step.record(encoder, full, full.map((b) => bufferWith(new Float32Array(b.size / 4))));
    expect(code(() => step.record(device.createCommandEncoder(), full, full))).toBe('E_STATE');
    device.queue.submit([encoder.finish()]);
    expect((await pending.status()).ok).toBe(true);
    step.destroy();
    expect(code(() => step.record(device.createCommandEncoder(), full, full))).toBe('E_STATE');

    const own = await gpuDevice();
    const lost = await DeviceStep.create(net, own);
    own.destroy();
    await own.lost;
    const b = arrays.map(() => own.createBuffer({ size: 4, usage: GPUBufferUsage.COPY_SRC }));
    expect(code(() => lost.record(own.createCommandEncoder(), b, b))).toBe('E_DEVICE');
  });

  it('kernels the device rejects are E_DEVICE', async () => {
    const fake = {
      ...Object.fromEntries(['createBindGroupLayout', 'createPipelineLayout', 'createShaderModule', 'pushErrorScope'].map((k) => [k, () => ({})])),
      createComputePipelineAsync: () => Promise.reject(new Error('no such entry point')),
      popErrorScope: () => Promise.resolve(null),
      limits: device.limits,
      lost: new Promise(() => {}),
    } as unknown as GPUDevice;
    const e = await WebGPUBackend.create(fake).catch((x: unknown) => x as ENormError);
    expect(isENormError(e)).toBe(true);
    expect([(e as ENormError).code, (e as ENormError).message]).toEqual(['E_DEVICE', "the WebGPU device rejected enorm's kernels: no such entry point"]);
  });

  it("keeps no reference to the network's arrays: a WeakRef to one is cleared by gc once only the step is kept", async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const make = async () => {
      const { net } = denseNet();
      const weight = (net.find((l) => l.kind === 'dense') as { weight: Float32Array }).weight;
      return { step: await DeviceStep.create(net, device), ref: new WeakRef(weight) };
    };
    const { step, ref } = await make();
    // A few rounds: an object allocated during incremental marking survives the GC that finishes it.
    for (let round = 0; round < 5 && ref.deref() !== undefined; round++) {
      await new Promise((r) => setTimeout(r, 0));
      gc();
    }
    expect(ref.deref()).toBeUndefined();
    expect(step.engine.units).toBeGreaterThan(0);
    step.destroy();
  });
});
