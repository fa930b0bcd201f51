import type { CycleInfo, OnCycle, StopOn } from './options.js';

/** What the loop needs: the norm and c (where over-relaxation is safe), the rule, and the most cycles. */
export interface StoppingRule {
  p: number;
  c: number;
  tolerance: number;
  maxCycles: number;
  stopOn: StopOn;
  /** 'auto', or a fixed factor in (0, 2); 1 is the plain exact cycle. */
  omega: 'auto' | number;
  onCycle?: OnCycle;
}

/** What one cycle reports: the energy after it and its largest scale change max |log d|. */
export interface CycleOutcome {
  energy: number;
  maxScaleChange: number;
}

export interface Convergence {
  /** Energy after each cycle. */
  energies: number[];
  /** The stopping test held after the last cycle (see `StoppingRule.stopOn`). */
  converged: boolean;
  /** max |log d| of the last cycle (0 when no cycle ran). */
  maxScaleChange: number;
  /** The estimated distance to the fixed point after the last cycle (Infinity while unknown). */
  distance: number;
  /** The over-relaxation factor of the last cycle. */
  omega: number;
}

/** Plain cycles before the contraction rate is read off for omega = 'auto'. */
const WARMUP = 6;
/** Cycles over which the contraction rate of the scale changes is measured. */
const WINDOW = 4;
/** Largest automatic omega: beyond it SOR slows again when the rate estimate is off (docs/ALGORITHM.md 3c). */
const OMEGA_MAX = 1.9;
/** Steps below this are at the float32 floor of the scales (64 half-ulps): where stalls are counted. */
const FLOOR = 64 * 2 ** -24;
/** Cycles at the floor without a smaller step after which the loop stops. */
const STALL = 40;
/** An energy rise beyond the float32 noise of the sums (relative): the guard of omega = 'auto'. */
const RISE = 1e-6;

/**
 * Over-relaxation keeps the monotone descent where every unit's subproblem is symmetric about its
 * minimiser in log scale: finite p and c = 1 (docs/ALGORITHM.md section 3c). Elsewhere: omega = 1.
 */
export function relaxable(p: number, c: number): boolean {
  return Number.isFinite(p) && c === 1;
}

/**
 * The one convergence loop: runs `cycle(omega)` until the stopping test holds, maxCycles cycles
 * ran, or the distance estimate stalled; onCycle(cycle, E, info) after every cycle.
 *
 * Distance to the fixed point: for an iteration contracting by rho per cycle, x_k - x* is about
 * step_k / (1 - rho) in the max norm, step_k = max |log d| the cycle's largest scale change. rho is
 * the geometric mean of the step ratios over the last WINDOW cycles at the same omega (and at least
 * omega - 1); while it is unknown (or >= 1) the distance is Infinity. 'fixed-point' stops when that distance is at most
 * tolerance: a relative distance of the scales (and so of the weights, to twice it). For p = Infinity,
 * whose iteration is piecewise (the unit owning a maximum changes) rather than a smooth
 * contraction, the rate says little: its distance is the step itself, max |log d| <= tolerance.
 *
 * omega = 'auto' (docs/ALGORITHM.md 3c): WARMUP plain cycles, then the SOR factor for the measured
 * Gauss-Seidel rate, 2 / (1 + sqrt(1 - rho)), at most OMEGA_MAX; a cycle that raises the energy
 * halves omega - 1 (the descent holds in exact arithmetic; this guards rounding and mis-estimates).
 */
export function converge(energyBefore: number, rule: StoppingRule, cycle: (omega: number) => CycleOutcome): Convergence {
  const auto = rule.omega === 'auto' && relaxable(rule.p, rule.c);
  let omega = rule.omega === 'auto' ? 1 : rule.omega;
  const energies: number[] = [];
  let steps: number[] = []; // scale changes since omega last changed
  let previous = energyBefore;
  let maxScaleChange = 0;
  let distance = Infinity;
  let smallest = Infinity;
  let stalled = 0;
  for (let k = 1; k <= rule.maxCycles; k++) {
    const used = omega;
    const outcome = cycle(used);
    energies.push(outcome.energy);
    maxScaleChange = outcome.maxScaleChange;
    steps.push(maxScaleChange);
    // p = Infinity is piecewise (maxima switch owners), not a smooth contraction: its distance is the step.
    distance = rule.p === Infinity ? maxScaleChange : distanceEstimate(steps, used);
    rule.onCycle?.(k, outcome.energy, { maxScaleChange, distance, omega: used });
    const stop = rule.stopOn === 'energy' ? Math.abs(previous - outcome.energy) <= rule.tolerance * previous : distance <= rule.tolerance;
    if (stop) return { energies, converged: true, maxScaleChange, distance, omega: used };
    if (maxScaleChange < smallest) [smallest, stalled] = [maxScaleChange, 0];
    else if (maxScaleChange < FLOOR && ++stalled >= STALL) break;
    if (auto) {
      const next = nextOmega(used, steps, outcome.energy > previous * (1 + RISE), k);
      if (next !== used) [omega, steps] = [next, steps.slice(-1)];
    }
    previous = outcome.energy;
  }
  return { energies, converged: false, maxScaleChange, distance, omega };
}

/**
 * step_k / (1 - rho), rho the mean contraction of WINDOW steps at one omega (at least omega - 1: SOR
 * contracts no faster than that, |lambda| >= omega - 1); 0 after a zero step. Steps below FLOOR are
 * float32 rounding noise, whose ratios say nothing: rho then comes from the last window above it.
 */
export function distanceEstimate(steps: number[], omega = 1): number {
  const n = steps.length;
  const last = steps[n - 1];
  if (last === 0) return 0;
  if (n < 2) return Infinity;
  const span = Math.min(WINDOW, n - 1);
  let end = n - 1;
  while (end >= span && steps.slice(end - span, end + 1).some((x) => x < FLOOR)) end--;
  if (end < span) end = n - 1;
  const rho = Math.max(Math.pow(steps[end] / steps[end - span], 1 / span), omega - 1);
  return rho < 1 ? last / (1 - rho) : Infinity;
}

/**
 * omega for the next cycle (see converge). After the warm-up, from the plain Gauss-Seidel rate rho:
 * 2 / (1 + sqrt(1 - rho)). Then, every WINDOW + 2 cycles at one omega, from the observed SOR rate
 * lambda: for consistently ordered systems (lambda + omega - 1)^2 = lambda omega^2 mu^2 with mu^2 the
 * Gauss-Seidel rate, so mu^2 follows and omega moves up to its optimum (never down: above the optimum
 * lambda is complex, |lambda| = omega - 1, and this reading does not apply). The early cycles contract
 * faster than the asymptotic rate, so the first estimate is low and later ones raise it.
 * An energy rise halves omega - 1.
 */
function nextOmega(omega: number, steps: number[], rose: boolean, k: number): number {
  if (rose) return omega > 1 ? 1 + (omega - 1) / 2 : omega;
  const n = steps.length;
  if (omega === 1 ? k < WARMUP || n <= WINDOW : n < WINDOW + 2) return omega;
  const lambda = Math.pow(steps[n - 1] / steps[n - 1 - WINDOW], 1 / WINDOW);
  // Near or above the optimum |lambda| is about omega - 1: no reading of mu^2 there.
  if (!(lambda > 0 && lambda < 1) || (omega > 1 && lambda < 1.25 * (omega - 1))) return omega;
  const mu2 = omega === 1 ? lambda : (lambda + omega - 1) ** 2 / (lambda * omega * omega);
  if (!(mu2 > 0 && mu2 < 1)) return omega;
  const best = Math.min(OMEGA_MAX, 2 / (1 + Math.sqrt(1 - mu2)));
  return best > omega + 0.01 ? best : omega;
}
