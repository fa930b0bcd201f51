import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { enormStep } from '../../src/tfjs/index.js';
import { describeAdapter } from '../../scripts/webgpu-node.js';
import { useWebGPU } from '../helpers/webgpu.js';
import { ENormError } from '../../src/errors.js';
import { checkFrozenKept, checkNonFiniteRefused, checkOverflowRefused, checkStepPreserves, convBn, he, maxRelDiff, mlp, MODELS, trained, trainedChain, trainWithENorm } from './models.js';

const weightValues = (model: tf.LayersModel) => Promise.all(model.weights.map(async (w) => Array.from(await w.read().data())));

/** Counts tfjs's readbacks (read, readSync, readToGPU) on the active backend while `body` runs. */
async function countReadbacks(body: () => Promise<void>): Promise<number> {
  const backend = tf.backend() as unknown as Record<string, (...a: unknown[]) => unknown>;
  const names = ['read', 'readSync', 'readToGPU'];
  const saved = names.map((n) => backend[n]);
  let reads = 0;
  names.forEach((n, k) => { backend[n] = (...a: unknown[]) => { reads++; return saved[k].apply(backend, a); }; });
  try {
    await body();
  } finally {
    names.forEach((n, k) => { backend[n] = saved[k]; });
  }
  return reads;
}

describe('enormStep on the tfjs webgpu backend (Dawn; SwiftShader without a GPU)', () => {
  beforeAll(async () => {
    const info = await useWebGPU();
    console.log(`webgpu adapter: ${describeAdapter(info)}`);
  });

  it.each(MODELS)('$name: predictions kept, energy down, weight x momentum unchanged', async ({ make, shape }) => {
    expect(tf.getBackend()).toBe('webgpu');
    await checkStepPreserves(make, shape);
    expect(tf.getBackend()).toBe('webgpu');
  });

  it('the cycle stays on the GPU: no weight is read back, and the weights do change', async () => {
    const { model, optimizer } = await trained(convBn, [6, 6, 2], 1);
    expect((await enormStep(model, { optimizer })).cycleOn).toBe('webgpu'); // builds the plan, compiles the kernels
    const before = await Promise.all(model.weights.map((w) => w.read().data()));
    const reads = await countReadbacks(async () => {
      for (let i = 0; i < 3; i++) await enormStep(model, { optimizer, c: 1.2 });
    });
    expect(reads).toBe(0);
    const after = await Promise.all(model.weights.map((w) => w.read().data()));
    expect(after.some((a, i) => maxRelDiff(a, before[i]) > 1e-3)).toBe(true);
    // The readback path, for contrast, reads every plan tensor.
    expect(await countReadbacks(async () => { await enormStep(model, { optimizer, cycleOn: 'wasm' }); })).toBeGreaterThan(0);
  });

  it('allocates nothing that survives: tf.memory() is flat over 1,000 steps', async () => {
    const { model, optimizer } = await trained(mlp, [8], 1);
    await enormStep(model, { optimizer });
    const { numTensors, numBytes, numBytesInGPU } = tf.memory() as tf.MemoryInfo & { numBytesInGPU: number };
    for (let i = 0; i < 1000; i++) await enormStep(model, { optimizer });
    const now = tf.memory() as tf.MemoryInfo & { numBytesInGPU: number };
    expect([now.numTensors, now.numBytes, now.numBytesInGPU]).toEqual([numTensors, numBytes, numBytesInGPU]);
  });

  it('the GPU cycle leaves a layer another model shares and a non-trainable layer bit-identical', async () => {
    const a = await trainedChain();
    const b = tf.sequential({ layers: [a.model.layers[0], tf.layers.dense({ units: 5, ...he(7) })] });
    a.model.layers[3].trainable = false;
    await checkFrozenKept(a, [0, 3], /is frozen \((shared with another model|trainable: false)\)/, b);
    expect((await enormStep(a.model, { optimizer: a.optimizer })).cycleOn).toBe('webgpu');
  });

  it('a weight that is already NaN (a diverged SGD step) is E_NONFINITE, not an overflow, and nothing changes', async () => {
    await checkNonFiniteRefused('not finite');
  });

  it('a rescaling that overflows float32 is E_OVERFLOW naming the layer, and no variable changes', async () => {
    await checkOverflowRefused();
  });

  it("tfjs internals that are not there or not GPUBuffers are E_DEVICE; a non-webgpu backend is E_OPTION; nothing changes", async () => {
    const { model, optimizer } = await trained(mlp, [8], 1);
    await enormStep(model, { optimizer });
    const before = await weightValues(model);
    const tb = tf.backend() as unknown as { tensorMap: { get(id: object): { resource?: unknown } }; uploadToGPU?: unknown };
    const codeOf = (e: unknown) => (e instanceof ENormError ? e.code : String(e));
    // A resource that is not a GPUBuffer (a texture, say): refused before anything is recorded.
    const get = tb.tensorMap.get;
    tb.tensorMap.get = function (id: object) {
      const info = get.call(this, id);
      return info && { ...info, resource: { width: 4, height: 4 } };
    };
    const notBuffer = await enormStep(model, { optimizer }).catch((e: unknown) => e);
    tb.tensorMap.get = get;
    expect(codeOf(notBuffer)).toBe('E_DEVICE');
    expect((notBuffer as Error).message).toMatch(/not a GPUBuffer/);
    // A tfjs webgpu build without the internals the shim needs.
    tb.uploadToGPU = undefined;
    const missing = await enormStep(model, { optimizer }).catch((e: unknown) => e);
    delete tb.uploadToGPU;
    expect(codeOf(missing)).toBe('E_DEVICE');
    expect((missing as Error).message).toMatch(/lacks uploadToGPU/);
    expect(await weightValues(model)).toEqual(before);
    await enormStep(model, { optimizer }); // and the step works again
    await tf.setBackend('cpu');
    const wrong = await enormStep(model, { optimizer, cycleOn: 'webgpu' }).catch((e: unknown) => e);
    await tf.setBackend('webgpu');
    expect(codeOf(wrong)).toBe('E_OPTION');
  });

  it.each([
    { name: 'MLP', make: mlp, shape: [8] },
    { name: 'conv + BN net', make: convBn, shape: [6, 6, 2] },
  ])('$name trained 10 steps with ENorm: the same weights on webgpu (GPU cycle), webgpu (readback) and cpu (1e-4)', async ({ make, shape }) => {
    const gpu = await trainWithENorm(make, shape);
    const readback = await trainWithENorm(make, shape, { cycleOn: 'wasm' });
    await tf.setBackend('cpu');
    const cpu = await trainWithENorm(make, shape);
    await tf.setBackend('webgpu');
    cpu.forEach((w, i) => {
      expect(maxRelDiff(gpu[i], w)).toBeLessThan(1e-4);
      expect(maxRelDiff(readback[i], w)).toBeLessThan(1e-4);
    });
  });
});
