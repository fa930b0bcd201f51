import type { CycleInfo, OnCycle } from './options.js';

/** What the stopping rule needs: the norm (which rule applies), the most cycles, and the tolerance. */
export interface StoppingRule {
  p: number;
  tolerance: number;
  maxCycles: number;
  onCycle?: OnCycle;
}

/** What one cycle reports: the energy after it and its largest scale change. */
export interface CycleOutcome extends CycleInfo {
  energy: number;
}

export interface Convergence {
  /** Energy after each cycle. */
  energies: number[];
  /** The stopping test of `stopsAt` held after the last cycle. */
  converged: boolean;
  /** max |log d| of the last cycle (0 when no cycle ran). */
  maxScaleChange: number;
}

/**
 * The stopping test after one cycle. Finite p: the energy is smooth and falls monotonically, so stop
 * when |E_prev - E| <= tolerance * E_prev. p = Infinity: a max is not smooth and its energy can stall
 * while scales still move, so stop when every scale of the cycle is within tolerance of 1 in log
 * terms, max_i |log d_i| <= tolerance.
 */
export function stopsAt(rule: StoppingRule, previousEnergy: number, outcome: CycleOutcome): boolean {
  if (rule.p === Infinity) return outcome.maxScaleChange <= rule.tolerance;
  return Math.abs(previousEnergy - outcome.energy) <= rule.tolerance * previousEnergy;
}

/**
 * The one convergence loop: runs `cycle()` (one ENorm cycle) until `stopsAt` holds or maxCycles
 * cycles ran; onCycle(cycle, E, { maxScaleChange }) after every cycle.
 */
export function converge(energyBefore: number, rule: StoppingRule, cycle: () => CycleOutcome): Convergence {
  const energies: number[] = [];
  let previous = energyBefore;
  let maxScaleChange = 0;
  for (let k = 1; k <= rule.maxCycles; k++) {
    const outcome = cycle();
    energies.push(outcome.energy);
    maxScaleChange = outcome.maxScaleChange;
    rule.onCycle?.(k, outcome.energy, { maxScaleChange });
    if (stopsAt(rule, previous, outcome)) return { energies, converged: true, maxScaleChange };
    previous = outcome.energy;
  }
  return { energies, converged: false, maxScaleChange };
}
