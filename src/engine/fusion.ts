import { CrossMode } from './backend.js';
import type { Plan, View } from '../plan/ir.js';

/**
 * Where a unit of view `u` lies while another view `v` of the same tensor is walked:
 * for element (o, i, j) of v, u's unit is  (o / a) % b  (CrossMode.outer) or  (j / a) % b  (CrossMode.inner).
 */
export interface CrossIndex {
  /** outer: (o / a) % b, inner: (j / a) % b, unit: (i / a) % b (the view's own units) */
  mode: CrossMode;
  a: number;
  b: number;
}

/** A view that covers its whole tensor: every element belongs to exactly one of its units. */
function isFull(v: View, length: number): boolean {
  return v.start === 0 && v.outerStride === v.count * v.inner && v.outer * v.outerStride === length;
}

/**
 * u's unit of element e is (e / I_u) % L_u. Walking v, e = o*S_v + i*I_v + j with j < I_v, S_v = C_v*I_v:
 *  - if I_v is a multiple of I_u*L_u, the o and i terms vanish mod L_u:  unit = (j / I_u) % L_u;
 *  - if I_u is a multiple of S_v, the i and j terms never reach I_u:      unit = (o / (I_u/S_v)) % L_u.
 * Otherwise (depthwise kernels, for example) the axes interleave and there is no such form.
 */
export function crossIndex(v: View, u: View): CrossIndex | null {
  if (v.inner % (u.inner * u.count) === 0) return { mode: CrossMode.inner, a: u.inner, b: u.count };
  if (u.inner % v.outerStride === 0) return { mode: CrossMode.outer, a: u.inner / v.outerStride, b: u.count };
  return null;
}

export interface FusablePair {
  /** group index and 'writers' / 'readers' position of each side */
  sides: [ViewRef, ViewRef];
  /** cross[k]: where side 1-k's units lie while side k is walked */
  cross: [CrossIndex, CrossIndex];
}
export interface ViewRef {
  group: number;
  role: 'writer' | 'reader';
  index: number;
}

export interface FusionPlan {
  pairs: FusablePair[];
  /** Cost views alone on their tensor: rescaling them can sum their own units for the next step. */
  singles: ViewRef[];
}

/**
 * Tensors touched by exactly two full views, in two different groups, each counted in its
 * group's cost: while one side is rescaled, the same pass can sum the other side's |w|^p,
 * because nothing else touches the tensor before the other group reads those sums.
 * A cost view alone on its tensor is the same argument with itself as the partner.
 */
export function planFusion(plan: Plan): FusionPlan {
  const touches = new Map<number, { ref: ViewRef; view: View; inCost: boolean }[]>();
  plan.groups.forEach((g, group) => {
    g.writers.forEach((view, index) => push(view.tensor, { ref: { group, role: 'writer', index }, view, inCost: view.inCost }));
    g.readers.forEach((view, index) => push(view.tensor, { ref: { group, role: 'reader', index }, view, inCost: true }));
  });
  function push(t: number, entry: { ref: ViewRef; view: View; inCost: boolean }) {
    const list = touches.get(t) ?? [];
    list.push(entry);
    touches.set(t, list);
  }
  const pairs: FusablePair[] = [];
  const singles: ViewRef[] = [];
  for (const [t, list] of touches) {
    if (list.length === 1 && list[0].inCost) singles.push(list[0].ref);
    if (list.length !== 2) continue;
    const [p, q] = list;
    const length = plan.tensors[t].data.length;
    if (p.ref.group === q.ref.group || !p.inCost || !q.inCost || !isFull(p.view, length) || !isFull(q.view, length)) continue;
    const pq = crossIndex(p.view, q.view);
    const qp = crossIndex(q.view, p.view);
    if (pq && qp) pairs.push({ sides: [p.ref, q.ref], cross: [pq, qp] });
  }
  return { pairs, singles };
}
