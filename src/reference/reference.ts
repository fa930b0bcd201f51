import type { Network } from '../network/layers.js';
import { converge } from '../plan/converge.js';
import type { Group, Plan, View } from '../plan/ir.js';
import type { BalanceOptions } from '../plan/options.js';
import { prepare } from '../plan/prepare.js';

/**
 * Float64 reference of the ENorm cycle in plain TypeScript: the same plan as the engine, every
 * tensor copied to float64, elementwise loops straight from docs/ALGORITHM.md section 3, and no rounding
 * of the scales. It never touches the network's arrays. Slow; for tests and for checking.
 */
export interface ReferenceResult {
  plan: Plan;
  /** Balanced copy of every plan tensor (plan.tensors order). */
  tensors: Float64Array[];
  companions: Float64Array[][];
  energyBefore: number;
  energies: number[];
  cycles: number;
  converged: boolean;
  /** max |log d| over the units of the last cycle (the p = Infinity stopping quantity). */
  maxScaleChange: number;
  /** Cumulative scale per group (plan.groups order). */
  scales: Float64Array[];
}

/** Calls fn(flat index, unit) for every element of the view. */
export function forEachElement(v: View, fn: (index: number, unit: number) => void): void {
  for (let o = 0; o < v.outer; o++) {
    for (let i = 0; i < v.count; i++) {
      const base = v.start + o * v.outerStride + i * v.inner;
      for (let j = 0; j < v.inner; j++) fn(base + j, v.unitStart + i);
    }
  }
}

/** A running cost with one more weight x: acc + |x|^p, or max(acc, |x|) for p = Infinity (range equalisation). */
export function addCost(acc: number, x: number, p: number): number {
  return p === Infinity ? Math.max(acc, Math.abs(x)) : acc + Math.abs(x) ** p;
}

/** Per-unit costs A_i = sum |incoming|^p and B_i = sum |outgoing|^p of one group (max |w| for p = Infinity). */
export function groupCosts(group: Group, tensors: ArrayLike<number>[], p: number): { incoming: Float64Array; outgoing: Float64Array } {
  const incoming = new Float64Array(group.size);
  const outgoing = new Float64Array(group.size);
  for (const w of group.writers) {
    if (w.inCost) forEachElement(w, (x, u) => { incoming[u] = addCost(incoming[u], tensors[w.tensor][x], p); });
  }
  for (const r of group.readers) forEachElement(r, (x, u) => { outgoing[u] = addCost(outgoing[u], tensors[r.tensor][x], p); });
  return { incoming, outgoing };
}

/** E = sum over cost tensors of sum |w|^p; for p = Infinity, the sum over cost tensors of max |w|. */
export function referenceEnergy(plan: Plan, tensors: ArrayLike<number>[], p: number): number {
  let e = 0;
  plan.tensors.forEach((t, i) => {
    if (!t.cost) return;
    const w = tensors[i];
    if (p === Infinity) {
      let m = 0;
      for (let x = 0; x < w.length; x++) m = addCost(m, w[x], p);
      e += m;
    } else {
      for (let x = 0; x < w.length; x++) e += Math.abs(w[x]) ** p;
    }
  });
  return e;
}

/**
 * d = (B / A)^(1/(2p)) / sqrt(c), and for p = Infinity its limit sqrt(B / A) / sqrt(c) with A, B the
 * max costs; 1 for a dead unit (A or B = 0) or a d that is not finite and > 0.
 */
export function referenceScale(a: number, b: number, p: number, c: number): number {
  const d = p === Infinity ? Math.sqrt(b / a) / Math.sqrt(c) : (b / a) ** (1 / (2 * p)) / Math.sqrt(c);
  return a > 0 && b > 0 && Number.isFinite(d) && d > 0 ? d : 1;
}

/** max over every unit of |log d|: how far one cycle moved the scales. */
export function maxLogChange(scales: ArrayLike<number>[]): number {
  let m = 0;
  for (const d of scales) for (let i = 0; i < d.length; i++) m = Math.max(m, Math.abs(Math.log(d[i])));
  return m;
}

/** One Gauss-Seidel ENorm cycle on float64 tensors, in place; returns the scales it applied. */
export function referenceCycle(plan: Plan, tensors: Float64Array[], companions: Float64Array[][], p: number, c: number, omega = 1): Float64Array[] {
  return plan.groups.map((g) => {
    const { incoming: a, outgoing: b } = groupCosts(g, tensors, p);
    const d = new Float64Array(g.size);
    // Over-relaxed in log scale: log d := omega * log d (docs/ALGORITHM.md 3c).
    for (let i = 0; i < g.size; i++) d[i] = omega === 1 ? referenceScale(a[i], b[i], p, c) : referenceScale(a[i], b[i], p, c) ** omega;
    const apply = (v: View, s: (u: number) => number) => {
      forEachElement(v, (x, u) => {
        tensors[v.tensor][x] *= s(u);
        for (const m of companions[v.tensor]) m[x] /= s(u);
      });
    };
    for (const w of g.writers) apply(w, (u) => d[u]);
    for (const r of g.readers) apply(r, (u) => 1 / d[u]);
    return d;
  });
}

export function balanceReference(net: Network, options: BalanceOptions = {}): ReferenceResult {
  // The engine's pipeline: one read of the description (getters, proxies), so validated is what is planned.
  const { plan, options: o } = prepare(net, options);
  const tensors = plan.tensors.map((t) => Float64Array.from(t.data));
  const companions = plan.tensors.map((t) => t.companions.map((m) => Float64Array.from(m)));
  const scales = plan.groups.map((g) => new Float64Array(g.size).fill(1));
  const energyBefore = referenceEnergy(plan, tensors, o.p);
  // The reference calls no onCycle (it never did): only the stopping rule is shared with balance().
  const rule = { p: o.p, c: o.c, tolerance: o.tolerance, maxCycles: o.maxCycles, stopOn: o.stopOn, omega: o.omega };
  const { energies, converged, maxScaleChange } = converge(energyBefore, rule, (omega) => {
    const d = referenceCycle(plan, tensors, companions, o.p, o.c, omega);
    d.forEach((dg, gi) => dg.forEach((x, i) => { scales[gi][i] *= x; }));
    return { energy: referenceEnergy(plan, tensors, o.p), maxScaleChange: maxLogChange(d) };
  });
  return { plan, tensors, companions, energyBefore, energies, cycles: energies.length, converged, maxScaleChange, scales };
}
