/**
 * The Jacobi-style cycle of the official PyTorch release (docs/ALGORITHM.md section 6), in float64 on the
 * same plan as the exact cycle: every group's A_i and B_i are read from the weights as they were at
 * the start of the cycle, and all rescalings land afterwards. The exact (Gauss-Seidel) cycle reads
 * each group's sums after the previous group's rescaling (reference/reference.ts).
 */
import type { Plan } from '../../src/plan/ir.js';
import { forEachElement, groupCosts } from '../../src/reference/reference.js';

export function jacobiCycle(plan: Plan, tensors: Float64Array[], p: number, c: number): void {
  const scales = plan.groups.map((g) => {
    const { incoming: a, outgoing: b } = groupCosts(g, tensors, p);
    return Float64Array.from(a, (ai, i) => {
      const d = (b[i] / ai) ** (1 / (2 * p)) / Math.sqrt(c);
      return ai > 0 && b[i] > 0 && Number.isFinite(d) && d > 0 ? d : 1;
    });
  });
  plan.groups.forEach((g, k) => {
    const d = scales[k];
    for (const w of g.writers) forEachElement(w, (x, u) => { tensors[w.tensor][x] *= d[u]; });
    for (const r of g.readers) forEachElement(r, (x, u) => { tensors[r.tensor][x] /= d[u]; });
  });
}
