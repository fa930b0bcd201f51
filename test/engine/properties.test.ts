import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { BackendName } from '../../src/engine/backend.js';
import { balance } from '../../src/engine/enorm.js';
import { balanceReference } from '../../src/reference/reference.js';
import { architectureArb } from '../helpers/architecture-arbs.js';
import { buildArchitecture } from '../helpers/architectures.js';
import { cloneNetwork, maxRelDiff, randomInputs, run, withFloat64Tensors } from '../helpers/nets.js';

const specArb = architectureArb();
const optionsArb = fc.record({
  p: fc.constantFrom(1, 2, 3),
  c: fc.constantFrom(1, 1.2),
  includeBiases: fc.boolean(),
  residual: fc.constantFrom('complete' as const, 'blocks' as const),
});

const CYCLES = 6;
const BACKENDS: BackendName[] = ['simd', 'scalar', 'js'];

describe('random architectures (property)', () => {
  it('every backend matches the float64 reference, energy descends (c = 1), the function is preserved', async () => {
    let runs = 0;
    let balanced = 0;
    let streams = 0;
    await fc.assert(
      fc.asyncProperty(specArb, optionsArb, async (spec, options) => {
        const { net, shape } = buildArchitecture(spec);
        const ref = balanceReference(net, { ...options, maxCycles: CYCLES, tolerance: 0 });
        runs++;
        if (ref.plan.groups.length > 0) balanced++;
        if (ref.plan.groups.some((g) => g.layers.length > 1)) streams++;
        if (options.c === 1) {
          let prev = ref.energyBefore;
          for (const e of ref.energies) {
            expect(e).toBeLessThanOrEqual(prev * (1 + 1e-12));
            prev = e;
          }
        }
        const x = randomInputs(shape, 4, spec.seed ^ 0x5bd1);
        const before = run(net, x, 4, shape);
        // The algorithm preserves the function exactly: float64 reference weights, float64 forward.
        expect(maxRelDiff(run(withFloat64Tensors(net, ref.tensors, options.residual), x, 4, shape), before), 'reference output').toBeLessThan(1e-9);
        for (const backend of BACKENDS) {
          const copy = cloneNetwork(net);
          const report = await balance(copy, { ...options, maxCycles: CYCLES, tolerance: 0, backend });
          expect(report.groups).toBe(ref.plan.groups.length);
          const plan = balanceReference(copy, { ...options, maxCycles: 0 }).plan;
          plan.tensors.forEach((t, i) => {
            expect(maxRelDiff(t.data, ref.tensors[i]), `${backend} ${t.layer} ${t.role}`).toBeLessThan(1e-4);
            t.companions.forEach((m, j) => expect(maxRelDiff(m, ref.companions[i][j])).toBeLessThan(1e-4));
          });
          // float32 weights round at every rescaling (~6e-8 each); tiny random nets can have outputs much
          // smaller than their terms, so the float32 bound here is 1e-4 (1e-5 on the per-kind tests).
          expect(maxRelDiff(run(copy, x, 4, shape), before), `${backend} output`).toBeLessThan(1e-4);
        }
      }),
      { numRuns: 300 },
    );
    // The generator must really exercise the engine: most networks have units to balance, some residual streams.
    expect(runs).toBeGreaterThanOrEqual(300);
    expect(balanced).toBeGreaterThan(runs / 2);
    expect(streams).toBeGreaterThan(10);
    console.log(`property: ${runs} architectures, ${balanced} with groups, ${streams} with residual streams`);
  });
});
