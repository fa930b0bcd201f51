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
export function isFull(v: View, length: number): boolean {
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

/** One view of a tensor, with the group that owns its units. */
export interface Touch {
  group: number;
  role: 'writer' | 'reader';
  view: View;
  /** Whether the view's |w|^p counts in its group's sums (every reader; writers as WriterView.inCost). */
  inCost: boolean;
}

/**
 * How the engine keeps one plan tensor (docs/ALGORITHM.md section 3b):
 *  - untouched: no group's units are in it; it never changes.
 *  - single: one view. Its value is W diag(sigma) along the view's units, so its unweighted sums are
 *    constant until the scales are materialised: summed once, when the weights are replaced.
 *  - pair: two full views in two groups whose units cross-index each other. Its value is W scaled by
 *    both groups' pending scales; a group step sums it walking the partner view, weighted by the
 *    partner's scales (cross[k]: where side 1-k's units lie while side k is walked).
 *    `walk` is a side whose cross index is CrossMode.outer: the materialising pass walks it.
 *  - eager: anything else (depthwise kernels, partial views, more than two views): rescaled at every
 *    group step as in the plain cycle, and summed in its groups' pending-scale frame.
 */
export type Keeping =
  | { kind: 'untouched' }
  | { kind: 'single'; touch: Touch }
  | { kind: 'pair'; sides: [Touch, Touch]; cross: [CrossIndex, CrossIndex]; walk: 0 | 1 }
  | { kind: 'eager'; touches: Touch[] };

export interface Deferral {
  keeping: Keeping[];
  /**
   * Per cost tensor, the view whose sums give the tensor's energy at the end of a cycle: its last
   * view in group order, summed after every other view's scales were final for the cycle. Null when
   * the tensor has none (its last group holds two of its views, or a partial one). `free` says
   * whether every cost tensor has one (or is untouched) and p is finite: then the energy after a
   * cycle is the sum of what the group steps computed, with no extra pass.
   */
  finalView: (View | null)[];
  free: boolean;
}

/** Every tensor's keeping, from the plan alone (compiled once per engine). */
export function planDeferral(plan: Plan, p: number): Deferral {
  const touches: Touch[][] = plan.tensors.map(() => []);
  plan.groups.forEach((g, group) => {
    for (const view of g.writers) touches[view.tensor].push({ group, role: 'writer', view, inCost: view.inCost });
    for (const view of g.readers) touches[view.tensor].push({ group, role: 'reader', view, inCost: true });
  });
  const keeping = touches.map((list, t): Keeping => {
    if (list.length === 0) return { kind: 'untouched' };
    if (list.length === 1) return { kind: 'single', touch: list[0] };
    const length = plan.tensors[t].data.length;
    if (list.length === 2 && list[0].group !== list[1].group && list.every((x) => isFull(x.view, length))) {
      const [p0, p1] = list;
      const c0 = crossIndex(p0.view, p1.view);
      const c1 = crossIndex(p1.view, p0.view);
      if (c0 && c1 && (c0.mode === CrossMode.outer || c1.mode === CrossMode.outer)) {
        return { kind: 'pair', sides: [p0, p1], cross: [c0, c1], walk: c0.mode === CrossMode.outer ? 0 : 1 };
      }
    }
    return { kind: 'eager', touches: list };
  });
  const finalView = touches.map((list, t): View | null => {
    if (!plan.tensors[t].cost || list.length === 0) return null;
    const last = Math.max(...list.map((x) => x.group));
    const atLast = list.filter((x) => x.group === last);
    const x = atLast[0];
    return atLast.length === 1 && x.inCost && isFull(x.view, plan.tensors[t].data.length) ? x.view : null;
  });
  const free = p !== Infinity && plan.tensors.every((t, i) => !t.cost || touches[i].length === 0 || finalView[i] !== null);
  return { keeping, finalView, free };
}
