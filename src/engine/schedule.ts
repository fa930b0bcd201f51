/**
 * The ENorm cycle compiled once into flat lists of kernel calls. `ENorm.cycle()` replays one of
 * two lists; nothing is decided while it runs:
 *  - `fresh`: the first cycle after the weights were replaced from outside (upload, a device
 *    copy-in). It zeroes every sum, then computes each one from the weights.
 *  - `steady`: every later cycle. A fused pass of the previous cycle (or of an earlier group in
 *    this one) already summed some views; their `accumulate` calls are left out.
 */
import { CrossMode } from './backend.js';
import { planFusion, type CrossIndex, type ViewRef } from './fusion.js';
import type { Layout } from './layout.js';
import type { Plan, View } from '../plan/ir.js';

/** One kernel call with all its arguments bound (byte pointers, p, c), or the host's scale bookkeeping. */
export type Step =
  | { op: 'zero'; ptr: number; bytes: number }
  | { op: 'accumulate'; w: number; outer: number; outerStride: number; count: number; inner: number; acc: number; p: number }
  | { op: 'solve'; incoming: number; outgoing: number; size: number; p: number; c: number; d: number; dInv: number }
  | { op: 'scale'; w: number; outer: number; outerStride: number; count: number; inner: number; s: number }
  | {
      op: 'scaleAccumulate'; w: number; outer: number; outerStride: number; count: number; inner: number;
      s: number; acc: number; p: number; mode: CrossMode; a: number; b: number;
    }
  /** total_g *= d after group g's step (host engines only: the host reads d). */
  | { op: 'recordScales'; group: number };

export interface Schedules {
  fresh: Step[];
  steady: Step[];
}

/** A view resolved to byte pointers. */
interface BoundView {
  w: number;
  outer: number;
  outerStride: number;
  count: number;
  inner: number;
  /** Byte offsets of this view's units inside its group's f64 sums and the f32 scale vectors. */
  acc: number;
  sc: number;
  companions: number[];
  /** Rescaling this view also sums the partner view's |w|^p into the partner's sums at `sums`. */
  fuse: { partner: BoundView; sums: number; cross: CrossIndex } | null;
}

interface BoundGroup {
  size: number;
  /** A = sum |incoming|^p and B = sum |outgoing|^p per unit (f64). */
  incoming: number;
  outgoing: number;
  costWriters: BoundView[];
  writers: BoundView[];
  readers: BoundView[];
}

/** Where the engine's region starts and what it holds (layout offsets + base = byte pointers). */
export interface ScheduleInput {
  plan: Plan;
  layout: Layout;
  base: number;
  p: number;
  c: number;
  /** Add a recordScales step after each group (the host can read d). */
  recordScales: boolean;
}

/** Both schedules of one engine. */
export function compileSchedules(input: ScheduleInput): Schedules {
  const groups = bindGroups(input);
  const { layout, base } = input;
  // Views already summed by a fused pass, unused since: empty after the weights were replaced.
  const summed = new Set<BoundView>();
  const fresh: Step[] = [{ op: 'zero', ptr: base, bytes: layout.sumsBytes }, ...compileCycle(groups, summed, input)];
  // What fresh leaves in `summed` is what every later cycle finds: a view is left summed iff its
  // partner is rescaled after the view's own group summed, which depends on the group order only.
  const steady = compileCycle(groups, summed, input);
  return { fresh, steady };
}

/**
 * One cycle (docs/ALGORITHM.md section 3), Gauss-Seidel over the groups in order. For each group:
 *   A_i = sum |incoming_i|^p,  B_i = sum |outgoing_i|^p   (skipped for views in `summed`)
 *   d_i = (B_i / A_i)^(1/(2p)) / sqrt(c), then the group's sums are zeroed
 *   incoming_i *= d_i,  outgoing_i /= d_i                    (companions move inversely)
 * `summed` is updated as the cycle would leave it.
 */
function compileCycle(groups: BoundGroup[], summed: Set<BoundView>, { layout, base, p, c, recordScales }: ScheduleInput): Step[] {
  const d = base + layout.d;
  const dInv = base + layout.dInv;
  const steps: Step[] = [];
  const sum = (v: BoundView, sums: number) => {
    if (!summed.delete(v)) steps.push({ op: 'accumulate', ...shape(v), acc: sums + v.acc, p });
  };
  const rescale = (v: BoundView, s: number, inverse: number) => {
    if (v.fuse) {
      const { mode, a, b } = v.fuse.cross;
      steps.push({ op: 'scaleAccumulate', ...shape(v), s: s + v.sc, acc: v.fuse.sums, p, mode, a, b });
      summed.add(v.fuse.partner);
    } else {
      steps.push({ op: 'scale', ...shape(v), s: s + v.sc });
    }
    for (const m of v.companions) steps.push({ op: 'scale', ...shape(v), w: m, s: inverse + v.sc });
  };
  groups.forEach((g, group) => {
    for (const v of g.costWriters) sum(v, g.incoming);
    for (const v of g.readers) sum(v, g.outgoing);
    steps.push({ op: 'solve', incoming: g.incoming, outgoing: g.outgoing, size: g.size, p, c, d, dInv });
    steps.push({ op: 'zero', ptr: g.incoming, bytes: 8 * g.size });
    steps.push({ op: 'zero', ptr: g.outgoing, bytes: 8 * g.size });
    for (const v of g.writers) rescale(v, d, dInv);
    for (const v of g.readers) rescale(v, dInv, d);
    if (recordScales) steps.push({ op: 'recordScales', group });
  });
  return steps;
}

const shape = ({ w, outer, outerStride, count, inner }: BoundView) => ({ w, outer, outerStride, count, inner });

/** Every group's views as byte pointers, with the fused partners of planFusion attached. */
function bindGroups({ plan, layout, base }: ScheduleInput): BoundGroup[] {
  const bind = (v: View): BoundView => ({
    w: base + layout.tensors[v.tensor] + 4 * v.start,
    outer: v.outer,
    outerStride: v.outerStride,
    count: v.count,
    inner: v.inner,
    acc: 8 * v.unitStart,
    sc: 4 * v.unitStart,
    companions: layout.companions[v.tensor].map((offset) => base + offset + 4 * v.start),
    fuse: null,
  });
  const groups = plan.groups.map((g, gi): BoundGroup => {
    const writers = g.writers.map(bind);
    return {
      size: g.size,
      incoming: base + layout.groupSums[gi].incoming,
      outgoing: base + layout.groupSums[gi].outgoing,
      costWriters: writers.filter((_, i) => g.writers[i].inCost),
      writers,
      readers: g.readers.map(bind),
    };
  });
  // A tensor between exactly two groups is read and written once per rescaling instead of twice;
  // a cost view alone on its tensor sums its own units for its group's next step while rescaling.
  const side = ({ group, role, index }: ViewRef) => {
    const g = groups[group];
    return role === 'writer' ? { view: g.writers[index], sums: g.incoming } : { view: g.readers[index], sums: g.outgoing };
  };
  const fusion = planFusion(plan);
  for (const { sides, cross } of fusion.pairs) {
    const [p, q] = sides.map(side);
    p.view.fuse = { partner: q.view, sums: q.sums + q.view.acc, cross: cross[0] };
    q.view.fuse = { partner: p.view, sums: p.sums + p.view.acc, cross: cross[1] };
  }
  for (const ref of fusion.singles) {
    const { view, sums } = side(ref);
    view.fuse = { partner: view, sums: sums + view.acc, cross: { mode: CrossMode.unit, a: 1, b: view.count } };
  }
  return groups;
}
