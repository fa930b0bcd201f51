/**
 * The ENorm cycle compiled once into flat lists of kernel calls, on pending scales
 * (docs/ALGORITHM.md section 3b). Each group g keeps sigma_g, the product of its scales since
 * the weights were last materialised; a tensor's value is its stored W times the sigma of the
 * groups its views belong to (1/sigma on the reading side). A group step sums the stored weights
 * weighted by the other groups' sigma and updates sigma_g: a cycle reads weights and writes none,
 * except for the few tensors kept eagerly (deferral.ts). Lists:
 *  - `fresh`: what the first cycle after the weights were replaced runs first: every sigma := 1,
 *    and the constant sums of single-view tensors.
 *  - `cycle`: one cycle, Gauss-Seidel over the groups in order.
 *  - `materialise`: W := W * sigma * sigma' for every deferred tensor, companions by the inverses,
 *    in one pass each (the finiteness check is fused into it).
 */
import { CrossMode } from './backend.js';
import { planDeferral, type Deferral, type Touch } from './deferral.js';
import type { Layout } from './layout.js';
import type { Plan, View } from '../plan/ir.js';

interface Shape {
  w: number;
  outer: number;
  outerStride: number;
  count: number;
  inner: number;
}

/** One kernel call with its arguments bound (byte pointers, p, c), or the host's scale bookkeeping. */
export type Step =
  | { op: 'zero'; ptr: number; bytes: number }
  | { op: 'fill'; ptr: number; n: number; x: number }
  | { op: 'copy'; dst: number; src: number; bytes: number }
  | ({ op: 'accumulate'; acc: number; p: number } & Shape)
  | ({ op: 'accumulateScaled'; s: number; acc: number; p: number; mode: CrossMode; a: number; b: number } & Shape)
  /** omega is the engine's at replay (ENorm.cycle's argument). */
  | { op: 'solve'; sums: number; size: number; p: number; c: number; logSigma: number; sigma: number; sigmaInv: number; d: number; dInv: number; energy: number }
  | ({ op: 'scale'; s: number } & Shape)
  /** max |log d| of group g's step (host engines only: the host reads log sigma). */
  | { op: 'recordScales'; group: number };

/** One materialising pass (`scaleBoth`) over plan tensor `tensor` (slot 0) or its companion slot - 1. */
export type MaterialiseStep = { s: number; g: number; a: number; b: number; tensor: number; slot: number } & Shape;

export interface Schedules {
  fresh: Step[];
  cycle: Step[];
  materialise: MaterialiseStep[];
  /** Whether the energy after a cycle is the sum of the groups' energies (Deferral.free). */
  freeEnergy: boolean;
  /** Plan tensors the engine rescales that no materialising pass checks (eager ones): scanned after it. */
  unchecked: number[];
  /** Plan tensors in no group (never rescaled). */
  untouched: number[];
}

/** Where the engine's region starts and what it holds (layout offsets + base = byte pointers). */
export interface ScheduleInput {
  plan: Plan;
  layout: Layout;
  base: number;
  p: number;
  c: number;
  /** Add a recordScales step after each group (the host can read log sigma). */
  recordScales: boolean;
}

export function compileSchedules(input: ScheduleInput): Schedules {
  const { plan, p } = input;
  const deferral = planDeferral(plan, p);
  const at = pointers(input);
  return {
    fresh: compileFresh(input, deferral, at),
    cycle: compileCycle(input, deferral, at),
    materialise: compileMaterialise(input, deferral, at),
    freeEnergy: deferral.free,
    unchecked: deferral.keeping.flatMap((k, t) => (k.kind === 'eager' ? [t] : [])),
    untouched: deferral.keeping.flatMap((k, t) => (k.kind === 'untouched' ? [t] : [])),
  };
}

/** Byte pointers of everything a step names. */
function pointers({ layout, base }: ScheduleInput) {
  const unit = (block: number, g: number, v: View) => base + block + 4 * (layout.unitOffset[g] + v.unitStart);
  return {
    shape: (v: View, array: number): Shape => ({ w: array + 4 * v.start, outer: v.outer, outerStride: v.outerStride, count: v.count, inner: v.inner }),
    /** Plan tensor t (j = 0) or its companion j - 1. */
    array: (t: number, j: number) => base + (j === 0 ? layout.tensors[t] : layout.companions[t][j - 1]),
    /** The factor the touch's units carry: sigma on a writer, 1/sigma on a reader; `inverse` flips it. */
    factor: (x: Touch, inverse = false) => unit((x.role === 'writer') !== inverse ? layout.sigma : layout.sigmaInv, x.group, x.view),
    sums: (g: number) => base + layout.groupSums[g].sums,
    base: (g: number) => base + layout.groupSums[g].base,
    energy: (g: number) => base + layout.energies + 8 * g,
    /** Group g's whole sigma and 1/sigma vectors, and its log sigma. */
    groupSigma: (g: number, inverse: boolean) => base + (inverse ? layout.sigmaInv : layout.sigma) + 4 * layout.unitOffset[g],
    groupLogSigma: (g: number) => base + layout.logSigma + 8 * layout.unitOffset[g],
    logSigma: base + layout.logSigma,
    d: base + layout.d,
    dInv: base + layout.dInv,
    ones: base + layout.ones,
    sigma: base + layout.sigma,
    sigmaInv: base + layout.sigmaInv,
  };
}
type Pointers = ReturnType<typeof pointers>;

/** Every sigma := 1 (log sigma := 0), then the constant sums of single-view tensors into their groups' base blocks. */
function compileFresh({ plan, layout, p }: ScheduleInput, { keeping }: Deferral, at: Pointers): Step[] {
  const units = layout.unitOffset.length ? layout.unitOffset[layout.unitOffset.length - 1] + plan.groups[plan.groups.length - 1].size : 0;
  const steps: Step[] = [
    { op: 'zero', ptr: at.logSigma, bytes: 8 * units },
    { op: 'fill', ptr: at.sigma, n: units, x: 1 },
    { op: 'fill', ptr: at.sigmaInv, n: units, x: 1 },
    { op: 'fill', ptr: at.ones, n: 1, x: 1 },
  ];
  plan.groups.forEach((g, gi) => steps.push({ op: 'zero', ptr: at.base(gi), bytes: 16 * g.size }));
  keeping.forEach((k, t) => {
    if (k.kind !== 'single' || !k.touch.inCost) return;
    const { group, role, view } = k.touch;
    const side = role === 'writer' ? 0 : 1;
    steps.push({ op: 'accumulate', ...at.shape(view, at.array(t, 0)), acc: at.base(group) + 8 * (side * plan.groups[group].size + view.unitStart), p });
  });
  return steps;
}

/**
 * One cycle (docs/ALGORITHM.md sections 3 and 3b). For each group g, with A, B the sums of the
 * current weights and A', B' those without g's own pending scale (A = sigma^p A', B = sigma^-p B'):
 *   A'_i = sum over g's incoming views of |W sigma_partner|^p,  B'_i likewise over its outgoing views
 *   sigma_i := (B'_i / A'_i)^(1/(2p)) / sqrt(c)        (so d_i = that / old sigma_i: the plain cycle's d)
 * Single-view tensors add their constant sums (base); eager tensors are summed as they are, in the
 * frame (times 1/sigma on a writer), then rescaled by d as in the plain cycle.
 */
function compileCycle({ plan, p, c, recordScales }: ScheduleInput, deferral: Deferral, at: Pointers): Step[] {
  const { keeping, finalView } = deferral;
  // Groups with constant sums of single-view tensors in their base block (one pass over the tensors).
  const hasBase = new Array<boolean>(plan.groups.length).fill(false);
  for (const k of keeping) if (k.kind === 'single' && k.touch.inCost) hasBase[k.touch.group] = true;
  const steps: Step[] = [];
  plan.groups.forEach((g, gi) => {
    const sums = at.sums(gi);
    if (hasBase[gi]) {
      steps.push({ op: 'copy', dst: sums, src: at.base(gi), bytes: 16 * g.size });
      steps.push({ op: 'zero', ptr: sums + 16 * g.size, bytes: 16 * g.size });
    } else {
      steps.push({ op: 'zero', ptr: sums, bytes: 32 * g.size });
    }
    // [Af | Bf | Ao | Bo]: a tensor's energy view sums into the final half. At p = Infinity every
    // sum goes there: Af + 0 is the max, and the energy is not read.
    const target = (x: Touch) => {
      const final = p === Infinity || finalView[x.view.tensor] === x.view;
      return sums + 8 * ((final ? 0 : 2) * g.size + (x.role === 'writer' ? 0 : g.size) + x.view.unitStart);
    };
    const eager: Touch[] = [];
    const touches: Touch[] = [
      ...g.writers.map((view): Touch => ({ group: gi, role: 'writer', view, inCost: view.inCost })),
      ...g.readers.map((view): Touch => ({ group: gi, role: 'reader', view, inCost: true })),
    ];
    for (const x of touches) {
      const t = x.view.tensor;
      const k = keeping[t];
      if (k.kind === 'eager') eager.push(x);
      if (!x.inCost) continue;
      if (k.kind === 'pair') {
        // Walk the partner u, weighted by its units' factors, summing into this view's units.
        const side = k.sides[0].view === x.view ? 1 : 0;
        const u = k.sides[side];
        const { mode, a, b } = k.cross[side];
        steps.push({ op: 'accumulateScaled', ...at.shape(u.view, at.array(t, 0)), s: at.factor(u), acc: target(x), p, mode, a, b });
      } else if (k.kind === 'eager') {
        // The current value without this group's own factor: times 1/sigma on a writer, sigma on a reader.
        steps.push({ op: 'accumulateScaled', ...at.shape(x.view, at.array(t, 0)), s: at.factor(x, true), acc: target(x), p, mode: CrossMode.unit, a: 1, b: x.view.count });
      }
    }
    const [sigma, sigmaInv] = [at.groupSigma(gi, false), at.groupSigma(gi, true)];
    steps.push({ op: 'solve', sums, size: g.size, p, c, logSigma: at.groupLogSigma(gi), sigma, sigmaInv, d: at.d, dInv: at.dInv, energy: at.energy(gi) });
    for (const x of eager) {
      const t = x.view.tensor;
      const [s, inverse] = x.role === 'writer' ? [at.d, at.dInv] : [at.dInv, at.d];
      steps.push({ op: 'scale', ...at.shape(x.view, at.array(t, 0)), s: s + 4 * x.view.unitStart });
      plan.tensors[t].companions.forEach((_, j) => steps.push({ op: 'scale', ...at.shape(x.view, at.array(t, j + 1)), s: inverse + 4 * x.view.unitStart }));
    }
    if (recordScales) steps.push({ op: 'recordScales', group: gi });
  });
  return steps;
}

/** W := W * sigma (* sigma') for every deferred tensor, and its companions by the inverses. */
function compileMaterialise({ plan }: ScheduleInput, { keeping }: Deferral, at: Pointers): MaterialiseStep[] {
  const steps: MaterialiseStep[] = [];
  keeping.forEach((k, t) => {
    if (k.kind !== 'single' && k.kind !== 'pair') return;
    // Walk `u` (own factor s[i]) with the second factor g[(o / a) % b]: the partner's, or the one 1.0.
    const [u, second] =
      k.kind === 'single'
        ? [k.touch, null]
        : [k.sides[k.walk], { x: k.sides[1 - k.walk], a: k.cross[k.walk].a, b: k.cross[k.walk].b }];
    const slots = plan.tensors[t].companions.length + 1;
    for (let j = 0; j < slots; j++) {
      const inverse = j > 0;
      steps.push({
        ...at.shape(u.view, at.array(t, j)),
        s: at.factor(u, inverse),
        g: second ? at.factor(second.x, inverse) : at.ones,
        a: second ? second.a : 1,
        b: second ? second.b : 1,
        tensor: t,
        slot: j,
      });
    }
  });
  return steps;
}
