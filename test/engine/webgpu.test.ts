// The WGSL kernels and the engine on a WebGPU device (Dawn; SwiftShader without a GPU).
// Sums are f32 on the device, so float64 comparisons use relative tolerances, not bits.
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { ENorm } from '../../src/engine/enorm.js';
import { prepare } from '../../src/plan/prepare.js';
import { WebGPUBackend } from '../../src/engine/webgpu/backend.js';
import { DeviceStep } from '../../src/webgpu.js';
import { isENormError, type ENormError } from '../../src/errors.js';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { Network } from '../../src/network/layers.js';
import { balanceReference } from '../../src/reference/reference.js';
import { architectureArb } from '../helpers/architecture-arbs.js';
import { buildArchitecture, type ConvOp, type DenseOp } from '../helpers/architectures.js';
import { expectBits, expectRel, naiveScale, naiveScaleAccumulate, randomFusedView } from '../helpers/naive-kernels.js';
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

describe('WGSL kernels against float64', () => {
  it('scale is the exact f32 product (= the Wasm kernel bit for bit); accumulate and fused reduce match in every mode', async () => {
    const m = await arena(4 << 20);
    const rng = mulberry32(7);
    const tp = m.base;
    const sp = m.base + (1 << 20);
    const ap = m.base + (2 << 20);
    let cases = 0;
    for (const mode of [0, 1, 2])
      for (const a of [1, 2, 3])
        for (const b of [1, 3, 5, 12])
          for (const p of [2, 1, 3, 0.5]) {
            const v = randomFusedView(rng);
            const t = randomFloat32(v.length, rng, 3);
            const s = randomFloat32(v.count, rng, 2);
            const acc0 = Float64Array.from({ length: b }, () => rng());
            m.put(tp, t);
            m.put(sp, s);
            m.putAcc(ap, acc0);
            m.k.scaleAccumulate(tp + 4 * v.start, v.outer, v.outerStride, v.count, v.inner, sp, ap, p, mode, a, b);
            m.flush();
            const want = naiveScaleAccumulate(t, v, s, Float64Array.from(acc0, Math.fround), p, mode, a, b);
            const where = `mode ${mode} a ${a} b ${b} p ${p} view ${JSON.stringify(v)}`;
            expectBits(await m.f32(tp, v.length), naiveScale(t, v, s));
            try {
              expectRel(await m.acc(ap, b), want.acc, 2e-6);
            } catch (e) {
              throw new Error(`${where}: ${(e as Error).message}`);
            }
            cases++;
          }
    expect(cases).toBe(144);
  });

  it('p = Infinity: the fused reduce takes the exact max in every mode; solve is sqrt(B/A)/sqrt(c)', async () => {
    const m = await arena(4 << 20);
    const rng = mulberry32(17);
    const [tp, sp, ap] = [m.base, m.base + (1 << 20), m.base + (2 << 20)];
    for (const mode of [0, 1, 2])
      for (const a of [1, 2, 3])
        for (const b of [1, 3, 5, 12]) {
          const v = randomFusedView(rng);
          const t = randomFloat32(v.length, rng, 3);
          const s = randomFloat32(v.count, rng, 2);
          const acc0 = Float64Array.from({ length: b }, () => Math.fround(rng()));
          m.put(tp, t);
          m.put(sp, s);
          m.putAcc(ap, acc0);
          m.k.scaleAccumulate(tp + 4 * v.start, v.outer, v.outerStride, v.count, v.inner, sp, ap, Infinity, mode, a, b);
          m.flush();
          const w = naiveScale(t, v, s);
          const want = acc0.slice();
          for (let o = 0; o < v.outer; o++)
            for (let i = 0; i < v.count; i++)
              for (let j = 0; j < v.inner; j++) {
                const idx = Math.floor((mode === 0 ? o : mode === 1 ? j : i) / a) % b;
                want[idx] = Math.max(want[idx], Math.abs(w[v.start + o * v.outerStride + i * v.inner + j]));
              }
          expectBits(await m.f32(tp, v.length), w);
          // A max of f32 values is one of them: exact on the device too.
          expect(Array.from(await m.acc(ap, b)), `mode ${mode} a ${a} b ${b}`).toEqual(Array.from(want));
        }
    const A = Float64Array.of(4, 1, 0, 2, 9).map(Math.fround);
    const B = Float64Array.of(1, 1e-6, 3, 0, 9).map(Math.fround);
    m.putAcc(ap, A);
    m.putAcc(ap + 64, B);
    m.k.solveScales(ap, ap + 64, 5, Infinity, 1.2, sp, sp + 64);
    m.flush();
    const want = Float64Array.from(A, (x, i) => (x > 0 && B[i] > 0 ? Math.sqrt(B[i] / x) / Math.sqrt(1.2) : 1));
    expectRel(await m.f32(sp, 5), want, 1e-6);
  });

  it('solveScales gives (B/A)^(1/2p)/sqrt(c), 1 for dead units; zero clears; scanFinite finds the first NaN or Inf', async () => {
    const m = await arena(1 << 16);
    const n = 600; // more than one workgroup
    const rng = mulberry32(9);
    const A = Float64Array.from({ length: n }, () => Math.fround(10 ** (rng() * 8 - 4)));
    const B = Float64Array.from({ length: n }, () => Math.fround(10 ** (rng() * 8 - 4)));
    A[3] = 0;
    B[5] = 0;
    A[7] = Infinity;
    const [ia, ib, d, dInv] = [m.base, m.base + 8 * n, m.base + 16 * n, m.base + 20 * n];
    m.putAcc(ia, A);
    m.putAcc(ib, B);
    for (const [p, c] of [[2, 1], [1, 1.2], [3, 0.8]]) {
      m.k.solveScales(ia, ib, n, p, c, d, dInv);
      m.flush();
      const want = Float64Array.from(A, (a, i) => (a > 0 && B[i] > 0 && Number.isFinite(a) ? (B[i] / a) ** (1 / (2 * p)) / Math.sqrt(c) : 1));
      const got = await m.f32(d, n);
      expectRel(got, want, 2e-6);
      expect([got[3], got[5], got[7]]).toEqual([1, 1, 1]);
      expectRel(await m.f32(dInv, n), Float64Array.from(got, (x) => 1 / x), 1e-6);
    }
    m.k.zero(ia, 8 * n);
    m.flush();
    expect((await m.f32(ia, 2 * n)).every((x) => x === 0)).toBe(true);

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

  it('empty views record nothing; reserve after use and oversize networks are refused', async () => {
    const m = await arena(1024);
    m.k.accumulate(m.base, 0, 4, 4, 1, m.base + 512, 2);
    m.k.scale(m.base, 2, 4, 0, 1, m.base + 512);
    m.flush(); // an empty pass
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
