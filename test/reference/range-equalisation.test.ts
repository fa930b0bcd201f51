import { describe, expect, it } from 'vitest';
import type { Network } from '../../src/network/layers.js';
import { addCost, balanceReference, maxLogChange, referenceScale } from '../../src/reference/reference.js';

/** in(2) -> dense [2, 2] 'io' -> relu -> dense [2, 1]: unit i's incoming weights are column i of w1, its outgoing row i of w2. */
function tiny(): Network {
  return [
    { kind: 'input', name: 'in', shape: [2] },
    { kind: 'dense', name: 'd1', inputs: ['in'], weight: Float32Array.of(1, -8, 3, 2), bias: Float32Array.of(50, 50), shape: [2, 2], layout: 'io' },
    { kind: 'relu', name: 'r', inputs: ['d1'] },
    { kind: 'dense', name: 'd2', inputs: ['r'], weight: Float32Array.of(12, -0.5), shape: [2, 1], layout: 'io' },
  ];
}

describe('float64 reference at p = Infinity', () => {
  it('the cost is a max, the scale its limit formula, dead units keep 1', () => {
    expect(addCost(3, -5, Infinity)).toBe(5);
    expect(addCost(3, -2, Infinity)).toBe(3);
    expect(addCost(3, -2, 2)).toBe(7);
    expect(referenceScale(4, 9, Infinity, 1)).toBe(1.5);
    expect(referenceScale(4, 9, Infinity, 2.25)).toBe(1);
    expect(referenceScale(0, 9, Infinity, 1)).toBe(1);
    expect(referenceScale(4, 0, Infinity, 1)).toBe(1);
    expect(maxLogChange([Float64Array.of(1, Math.E), Float64Array.of(1 / Math.E ** 2)])).toBeCloseTo(2, 15);
  });

  it('one cycle by hand: d_i = sqrt(max|out_i| / max|in_i|), biases left out of the cost', () => {
    // Unit 0: max|in| = max(1, 3) = 3, max|out| = 12 -> d = 2. Unit 1: max(8, 2) = 8, 0.5 -> d = 1/4.
    const r = balanceReference(tiny(), { p: Infinity, maxCycles: 1 });
    expect(Array.from(r.scales[0])).toEqual([2, 0.25]);
    expect(r.maxScaleChange).toBe(Math.log(4));
    expect(Array.from(r.tensors[0])).toEqual([2, -2, 6, 0.5]);
    expect(Array.from(r.tensors[2])).toEqual([6, -2]);
    // E = max|w1| + max|w2| before (8 + 12) and after (6 + 6); the biases are not cost tensors.
    expect(r.energyBefore).toBe(20);
    expect(r.energies).toEqual([12]);
    expect(r.converged).toBe(false);
    // The second cycle finds every unit balanced: d = 1, so it stops.
    const twice = balanceReference(tiny(), { p: Infinity, maxCycles: 5 });
    expect(twice.cycles).toBe(2);
    expect(twice.converged).toBe(true);
    expect(twice.maxScaleChange).toBe(0);
  });

  it('includeBiases puts |b| in the incoming max and the energy', () => {
    // Unit 0: max(1, 3, 50) = 50, out 12 -> d = sqrt(12/50); unit 1: max(8, 2, 50) = 50 -> sqrt(0.5/50).
    const r = balanceReference(tiny(), { p: Infinity, maxCycles: 1, includeBiases: true });
    expect(r.scales[0][0]).toBeCloseTo(Math.sqrt(12 / 50), 15);
    expect(r.scales[0][1]).toBeCloseTo(Math.sqrt(0.5 / 50), 15);
    expect(r.energyBefore).toBe(8 + 50 + 12);
  });
});
