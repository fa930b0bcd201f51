import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { jacobiCycle } from '../../bench/experiments/jacobi.js';
import { fcNet } from '../../bench/experiments/models.js';
import { denseKernels, officialOrderStep } from '../../bench/experiments/official-order.js';
import { prepare } from '../../src/plan/prepare.js';
import { bindModel, valueOf } from '../../src/tfjs/model.js';
import type { Network } from '../../src/network/layers.js';

/** The model's weights as an enorm Network (the tfjs binding reads them). */
async function networkOf(model: tf.LayersModel): Promise<Network> {
  const bound = bindModel(model, new Map());
  for (const [data, variable] of bound.variableOf) data.set(await valueOf(variable).data());
  return bound.network;
}

describe("the official release's ENorm update as a training method (enorm-jacobi)", () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it.each([1, 1.2])('is the Jacobi cycle of bench/experiments/jacobi.ts (float64) without the last hidden layer, c = %s', async (c) => {
    const model = fcNet({ depth: 3, width: 12, norm: 'none', weightDecay: 0, seed: 4 });
    // Skew the scales so that the update moves them far (He init is nearly balanced already).
    denseKernels(model).forEach((v, i) => v.write(tf.tidy(() => tf.mul(v.read(), tf.exp(tf.randomNormal([1, v.shape[1]!], 0, 1, 'float32', i + 1))))));
    const net = await networkOf(model);
    const lastBefore = Array.from(await denseKernels(model).at(-1)!.read().data());
    const { plan } = prepare(net, { c });
    const tensors = plan.tensors.map((t) => Float64Array.from(t.data));
    jacobiCycle({ ...plan, groups: plan.groups.slice(0, -1) }, tensors, 2, c);
    expect(officialOrderStep(model, c)).toBe(true);
    const after = await networkOf(model);
    const { plan: got } = prepare(after, { c });
    let moved = 0;
    got.tensors.forEach((t, i) => {
      const scale = Math.max(...tensors[i].map(Math.abs));
      t.data.forEach((x, k) => {
        expect(Math.abs(x - tensors[i][k])).toBeLessThanOrEqual(1e-5 * scale);
        moved = Math.max(moved, Math.abs(x - plan.tensors[i].data[k]) / scale);
      });
    });
    expect(moved).toBeGreaterThan(0.05); // the update did something the comparison could miss
    // The release does not balance the last hidden layer, so the classifier's kernel is not touched.
    expect(Array.from(await denseKernels(model).at(-1)!.read().data())).toEqual(lastBefore);
    model.dispose();
  });

  it('a dead unit (no incoming weight) is refused: returns false and writes no kernel', async () => {
    const model = fcNet({ depth: 2, width: 6, norm: 'none', weightDecay: 0, seed: 5 });
    const [first] = denseKernels(model);
    first.write(tf.tidy(() => tf.mul(first.read(), tf.tensor([[0, 1, 1, 1, 1, 1]]))));
    const before = await Promise.all(denseKernels(model).map((v) => v.read().data()));
    expect(officialOrderStep(model, 1.2)).toBe(false);
    const after = await Promise.all(denseKernels(model).map((v) => v.read().data()));
    expect(after).toEqual(before);
    model.dispose();
  });
});
