import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { useWebGPU } from '../helpers/webgpu.js';
import { checkStepPreserves, maxRelDiff, MODELS, trainMlpWithENorm } from './models.js';

// On webgpu, enormStep is correct but still reads the weights back to run the Wasm cycle;
// the GPU-resident cycle is the open part of issue 3.
describe('enormStep on the tfjs webgpu backend (Dawn; SwiftShader without a GPU)', () => {
  beforeAll(async () => {
    const info = await useWebGPU();
    console.log(`webgpu adapter: ${info?.vendor ?? '?'} ${info?.architecture ?? ''} ${info?.description ?? ''}`);
  });

  it.each(MODELS)('$name: predictions kept, energy down, weight x momentum unchanged', async ({ make, shape }) => {
    expect(tf.getBackend()).toBe('webgpu');
    await checkStepPreserves(make, shape);
    expect(tf.getBackend()).toBe('webgpu');
  });

  it('the MLP trained 10 steps with ENorm gives the same weights on webgpu and cpu (1e-4)', async () => {
    const gpu = await trainMlpWithENorm();
    await tf.setBackend('cpu');
    const cpu = await trainMlpWithENorm();
    await tf.setBackend('webgpu');
    cpu.forEach((w, i) => expect(maxRelDiff(gpu[i], w)).toBeLessThan(1e-4));
  });
});
