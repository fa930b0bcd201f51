// How the engine keeps each tensor on pending scales (src/engine/deferral.ts): which tensors are
// pairs, singles or eager, that every pair's cross index names the right unit of every element,
// and which view gives a tensor's energy.
import { describe, expect, it } from 'vitest';
import { CrossMode } from '../../src/engine/backend.js';
import { crossIndex, planDeferral, type Keeping } from '../../src/engine/deferral.js';
import type { Plan, View } from '../../src/plan/ir.js';
import { compilePlan } from '../../src/plan/compile.js';
import { convChain, mlp, resnet18, vgg } from '../../src/network/builders.js';
import type { Network } from '../../src/network/layers.js';
import { forEachElement } from '../../src/reference/reference.js';
import { buildArchitecture } from '../helpers/architectures.js';

const plan = (net: Network, includeBiases = false) => compilePlan(net, { includeBiases, residual: 'complete' });

/** unit of u owning each flat element (-1: none) */
function unitOfElement(u: View, length: number): Int32Array {
  const owner = new Int32Array(length).fill(-1);
  forEachElement(u, (x, unit) => { owner[x] = unit - u.unitStart; });
  return owner;
}

/** Checks both cross indices of every pair element by element; returns the number of pairs. */
function checkPairs(p: Plan): number {
  const pairs = planDeferral(p, 2).keeping.filter((k): k is Extract<Keeping, { kind: 'pair' }> => k.kind === 'pair');
  for (const { sides, cross, walk } of pairs) {
    expect(cross[walk].mode).toBe(CrossMode.outer); // the materialising pass walks an outer-indexed side
    const length = p.tensors[sides[0].view.tensor].data.length;
    for (const k of [0, 1]) {
      const v = sides[k].view;
      const owner = unitOfElement(sides[1 - k].view, length);
      const { mode, a, b } = cross[k];
      forEachElement(v, (e) => {
        const local = e - v.start;
        const o = Math.floor(local / v.outerStride);
        const j = (local % v.outerStride) % v.inner;
        expect(mode === CrossMode.outer ? Math.floor(o / a) % b : Math.floor(j / a) % b).toBe(owner[e]);
      });
    }
  }
  return pairs.length;
}

const kinds = (p: Plan) => planDeferral(p, 2).keeping.map((k) => k.kind);

describe('deferral: how each tensor is kept on pending scales', () => {
  it.each([
    { name: 'mlp io', net: () => mlp({ sizes: [7, 5, 6, 3], bias: false }), pairs: 1 },
    { name: 'mlp oi', net: () => mlp({ sizes: [7, 5, 6, 3], layout: 'oi' }), pairs: 1 },
    { name: 'conv hwio', net: () => convChain({ channels: [2, 3, 4, 5, 2] }), pairs: 2 },
    { name: 'conv oihw', net: () => convChain({ channels: [2, 3, 4, 5, 2], layout: 'oihw' }), pairs: 2 },
    { name: 'flatten channels-last into io', net: () => vgg({ inputSize: 4, stages: [[3]], hidden: 5 }), pairs: 1 },
    { name: 'flatten channels-first into oi', net: () => vgg({ inputSize: 4, stages: [[3]], hidden: 5, layout: 'oihw' }), pairs: 1 },
  ])('$name: both cross indices name the right unit for every element', ({ net, pairs }) => {
    expect(checkPairs(plan(net()))).toBe(pairs);
  });

  it('random architectures (depthwise, concat, flatten): every pair indexes correctly, interleaved tensors are eager', () => {
    let pairs = 0;
    let eager = 0;
    for (let seed = 0; seed < 60; seed++) {
      const { net } = buildArchitecture({
        seed, torch: seed % 2 === 1, momentum: false, neck: seed % 3 === 0 ? 'flatten' : 'global-avg-pool',
        conv: ['conv', 'relu', 'depthwise', 'relu', 'conv', 'concat', 'conv'], dense: ['dense-relu', 'dense-concat', 'dense-relu'],
      });
      const p = plan(net);
      pairs += checkPairs(p);
      eager += kinds(p).filter((k) => k === 'eager').length;
    }
    expect(pairs).toBeGreaterThan(60);
    expect(eager).toBeGreaterThan(0);
  });

  it('crossIndex refuses interleaved axes (depthwise): such a tensor is eager', () => {
    // depthwise hwcm [3x3, C=2, M=2]: reader [9, 2, 2], writer [9, 4, 1]
    expect(crossIndex({ tensor: 0, start: 0, outer: 9, outerStride: 4, count: 2, inner: 2, unitStart: 0 }, { tensor: 0, start: 0, outer: 9, outerStride: 4, count: 4, inner: 1, unitStart: 0 })).toBeNull();
  });

  it('an MLP: hidden kernels are pairs, the first and last singles, biases singles; every cost tensor has its energy view', () => {
    const p = plan(mlp({ sizes: [30, 20, 20, 20, 10] }));
    const d = planDeferral(p, 2);
    const byRole = p.tensors.map((t, i) => `${t.layer}/${t.role}:${d.keeping[i].kind}`);
    expect(byRole).toEqual([
      'dense1/weight:single', 'dense1/bias:single', 'dense2/weight:pair', 'dense2/bias:single',
      'dense3/weight:pair', 'dense3/bias:single', 'dense4/weight:single', 'dense4/bias:untouched',
    ]);
    expect(d.free).toBe(true);
    // A pair's energy view is its later group's side: the reader of W2 is group 0's, its writer group 1's.
    const w2 = p.tensors.findIndex((t) => t.layer === 'dense2' && t.role === 'weight');
    expect(d.finalView[w2]).toBe(p.groups[1].writers.find((v) => v.tensor === w2));
    expect(planDeferral(p, Infinity).free).toBe(false); // a sum of maxima is not a sum over units
  });

  it('ResNet-18: BN decouples the convs (singles), residual groups still give every tensor an energy view', () => {
    const p = plan(resnet18({ width: 4 }));
    const d = planDeferral(p, 2);
    expect(d.keeping.filter((k) => k.kind === 'pair')).toHaveLength(0);
    expect(d.free).toBe(true);
  });
});
