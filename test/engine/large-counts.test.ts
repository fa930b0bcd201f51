// 200,000 groups or units: nothing spreads an unbounded array into function arguments
// (Math.max(...sizes) overflows the stack from about 130,000 elements).
import { describe, expect, it } from 'vitest';
import { ENorm } from '../../src/engine/enorm.js';
import type { Network } from '../../src/network/layers.js';
import { mulberry32 } from '../../src/network/random.js';
import { balanceReference } from '../../src/reference/reference.js';
import { maxRelDiff } from '../helpers/nets.js';

const N = 200_000;

describe(`${N.toLocaleString('en')} groups and units`, () => {
  // Planning 200,001 layers takes a while on a loaded 2-core machine: a generous timeout, no timing assertion.
  it(`a chain of ${N + 1} one-unit dense layers: ${N} groups, one Gauss-Seidel cycle exact`, { timeout: 600_000 }, async () => {
    const rng = mulberry32(1);
    const w = Array.from({ length: N + 1 }, () => Math.fround(0.5 + 1.5 * rng()));
    const net: Network = w.map((x) => ({ kind: 'dense', weight: Float32Array.of(x), shape: [1, 1] }));
    const engine = await ENorm.create(net, { backend: 'simd' });
    expect(engine.plan.groups).toHaveLength(N);
    expect(engine.units).toBe(N);
    engine.cycle();
    engine.download();
    const scales = engine.scales();
    expect(scales).toHaveLength(N);
    engine.dispose();
    // Float64 Gauss-Seidel on the chain: group k scales w_k by d and w_{k+1} by 1/d, d = (w_{k+1}^2 / w_k^2)^(1/4),
    // so both become sqrt(w_k w_{k+1}) (all weights positive).
    const want = w.slice();
    for (let k = 0; k < N; k++) {
      const d = (want[k + 1] / want[k]) ** 0.5;
      want[k] *= d;
      want[k + 1] /= d;
    }
    const got = Float64Array.from(net, (l) => (l.kind === 'dense' ? l.weight[0] : 0));
    expect(maxRelDiff(got, want)).toBeLessThan(1e-5);
    // The chain computes y = (product of the weights) x: the sum of log w did not move.
    const logSum = (a: ArrayLike<number>) => Array.from(a).reduce((s, x) => s + Math.log(x), 0);
    expect(Math.abs(logSum(got) - logSum(w))).toBeLessThan(1e-3);
  });

  it(`one hidden layer of ${N} units (dense [3, ${N}] -> relu -> dense [${N}, 2]) on every host backend`, async () => {
    const rng = mulberry32(2);
    const make = (): Network => [
      { kind: 'dense', weight: Float32Array.from({ length: 3 * N }, () => rng() - 0.5), shape: [3, N], bias: new Float32Array(N).fill(0.1) },
      { kind: 'relu' },
      { kind: 'dense', weight: Float32Array.from({ length: 2 * N }, () => 4 * (rng() - 0.5)), shape: [N, 2] },
    ];
    const net = make();
    const ref = balanceReference(net, { maxCycles: 2, tolerance: 0 });
    for (const backend of ['simd', 'scalar', 'js'] as const) {
      const engine = await ENorm.create(net, { backend });
      engine.cycle();
      engine.cycle();
      expect(engine.units).toBe(N);
      const [scales] = engine.scales();
      expect(scales.scales).toHaveLength(N);
      expect(maxRelDiff(scales.scales, ref.scales[0]), backend).toBeLessThan(1e-4);
      expect(Math.abs(engine.energy() - ref.energies[1]) / ref.energies[1]).toBeLessThan(1e-5);
      engine.dispose();
    }
  });
});
