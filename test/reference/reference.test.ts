import { describe, expect, it } from 'vitest';
import { mlp } from '../../src/network/builders.js';
import { balanceReference } from '../../src/reference/reference.js';

/** docs/ALGORITHM.md section 3 written for a plain chain of matrices W_k [out, in]: the textbook form. */
function textbookCycle(W: Float64Array[][], p: number, c: number): void {
  for (let k = 0; k + 1 < W.length; k++) {
    const rows = W[k];
    const next = W[k + 1];
    for (let i = 0; i < rows.length; i++) {
      const a = rows[i].reduce((s, x) => s + Math.abs(x) ** p, 0);
      const b = next.reduce((s, row) => s + Math.abs(row[i]) ** p, 0);
      const d = a > 0 && b > 0 ? (b / a) ** (1 / (2 * p)) / Math.sqrt(c) : 1;
      for (let j = 0; j < rows[i].length; j++) rows[i][j] *= d;
      for (const row of next) row[i] /= d;
    }
  }
}

describe('float64 reference', () => {
  it.each([
    { p: 2, c: 1, layout: 'io' as const },
    { p: 1, c: 1.2, layout: 'oi' as const },
    { p: 3, c: 0.8, layout: 'io' as const },
  ])('matches the textbook chain formula (p=$p, c=$c, layout $layout)', ({ p, c, layout }) => {
    const sizes = [5, 7, 6, 4, 3];
    const net = mlp({ sizes, bias: false, layout, seed: 7 });
    const W: Float64Array[][] = [];
    net.filter((l) => l.kind === 'dense').forEach((l, k) => {
      if (l.kind !== 'dense') return;
      const [nIn, nOut] = [sizes[k], sizes[k + 1]];
      W.push(Array.from({ length: nOut }, (_, o) => Float64Array.from({ length: nIn }, (_, i) => (layout === 'io' ? l.weight[i * nOut + o] : l.weight[o * nIn + i]))));
    });
    const cycles = 5;
    for (let n = 0; n < cycles; n++) textbookCycle(W, p, c);
    const ref = balanceReference(net, { p, c, maxCycles: cycles, tolerance: 0 });
    expect(ref.cycles).toBe(cycles);
    W.forEach((rows, k) => {
      const t = ref.tensors[k];
      const nOut = rows.length;
      const nIn = rows[0].length;
      rows.forEach((row, o) => row.forEach((x, i) => {
        const y = layout === 'io' ? t[i * nOut + o] : t[o * nIn + i];
        expect(Math.abs(y - x)).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(x)));
      }));
    });
  });

  it('does not touch the network', () => {
    const net = mlp({ sizes: [4, 5, 3], seed: 3 });
    const before = net.map((l) => (l.kind === 'dense' ? l.weight.slice() : null));
    balanceReference(net, { maxCycles: 10 });
    net.forEach((l, k) => { if (l.kind === 'dense') expect(l.weight).toEqual(before[k]); });
  });
});
