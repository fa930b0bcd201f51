import { describe, expect, it } from 'vitest';
import { crossIndex, planFusion } from '../../src/engine/fusion.js';
import type { Plan, View } from '../../src/plan/ir.js';
import { compilePlan } from '../../src/plan/compile.js';
import { convChain, mlp, resnet18, vgg } from '../../src/network/builders.js';
import type { Network } from '../../src/network/layers.js';
import { forEachElement } from '../../src/reference/reference.js';
import { buildArchitecture } from '../helpers/architectures.js';

const plan = (net: Network) => compilePlan(net, { includeBiases: false, residual: 'complete' });

/** unit of u owning each flat element */
function unitOfElement(u: View, length: number): Int32Array {
  const owner = new Int32Array(length).fill(-1);
  forEachElement(u, (x, unit) => { owner[x] = unit - u.unitStart; });
  return owner;
}

/** Checks the cross index of every fusable pair element by element. */
function checkPairs(p: Plan): number {
  const pairs = planFusion(p).pairs;
  for (const { sides, cross } of pairs) {
    const views = sides.map(({ group, role, index }) => (role === 'writer' ? p.groups[group].writers[index] : p.groups[group].readers[index]));
    const length = p.tensors[views[0].tensor].data.length;
    for (const k of [0, 1]) {
      const v = views[k];
      const owner = unitOfElement(views[1 - k], length);
      const { mode, a, b } = cross[k];
      for (let o = 0; o < v.outer; o++) {
        for (let i = 0; i < v.count; i++) {
          for (let j = 0; j < v.inner; j++) {
            const e = v.start + o * v.outerStride + i * v.inner + j;
            expect(mode === 0 ? Math.floor(o / a) % b : Math.floor(j / a) % b).toBe(owner[e]);
          }
        }
      }
    }
  }
  return pairs.length;
}

describe('fusion of rescaling with the other side\'s sums', () => {
  it.each([
    { name: 'mlp io', net: () => mlp({ sizes: [7, 5, 6, 3], bias: false }), pairs: 1 },
    { name: 'mlp oi', net: () => mlp({ sizes: [7, 5, 6, 3], layout: 'oi' }), pairs: 1 },
    { name: 'conv hwio', net: () => convChain({ channels: [2, 3, 4, 5, 2] }), pairs: 2 },
    { name: 'conv oihw', net: () => convChain({ channels: [2, 3, 4, 5, 2], layout: 'oihw' }), pairs: 2 },
    { name: 'flatten channels-last into io', net: () => vgg({ inputSize: 4, stages: [[3]], hidden: 5 }), pairs: 1 },
    { name: 'flatten channels-first into oi', net: () => vgg({ inputSize: 4, stages: [[3]], hidden: 5, layout: 'oihw' }), pairs: 1 },
  ])('$name: the cross index names the right unit for every element', ({ net, pairs }) => {
    expect(checkPairs(plan(net()))).toBe(pairs);
  });

  it('random architectures (depthwise, concat, flatten): every fused pair indexes correctly', () => {
    let total = 0;
    for (let seed = 0; seed < 60; seed++) {
      const { net } = buildArchitecture({
        seed, torch: seed % 2 === 1, momentum: false, neck: seed % 3 === 0 ? 'flatten' : 'global-avg-pool',
        conv: ['conv', 'relu', 'depthwise', 'relu', 'conv', 'concat', 'conv'], dense: ['dense-relu', 'dense-concat', 'dense-relu'],
      });
      const p = plan(net);
      total += checkPairs(p);
    }
    expect(total).toBeGreaterThan(60);
  });

  it('crossIndex refuses interleaved axes', () => {
    // depthwise hwcm [3x3, C=2, M=2]: reader [9, 2, 2], writer [9, 4, 1]
    expect(crossIndex({ tensor: 0, start: 0, outer: 9, outerStride: 4, count: 2, inner: 2, unitStart: 0 }, { tensor: 0, start: 0, outer: 9, outerStride: 4, count: 4, inner: 1, unitStart: 0 })).toBeNull();
  });

  it('ResNet-18: BN decouples everything, nothing to fuse; an MLP fuses every tensor between two hidden layers', () => {
    expect(planFusion(plan(resnet18({ width: 4 }))).pairs).toHaveLength(0);
    // W2 and W3 sit between two groups; W1 (input side) and W4 (output side) touch one each
    const mlpFusion = planFusion(plan(mlp({ sizes: [30, 20, 20, 20, 10], bias: false })));
    expect(mlpFusion.pairs).toHaveLength(2);
    // W1 (written by group 0 only) and W4 (read by group 2 only) sum their own units
    expect(mlpFusion.singles).toEqual([{ group: 0, role: 'writer', index: 0 }, { group: 2, role: 'reader', index: 0 }]);
  });
});
