/** What the stopping rule needs: the most cycles, and the relative energy change at which to stop. */
export interface StoppingRule {
  tolerance: number;
  maxCycles: number;
  onCycle?: (cycle: number, energy: number) => void;
}

export interface Convergence {
  /** Energy after each cycle. */
  energies: number[];
  /** The relative energy change of the last cycle was at most `tolerance`. */
  converged: boolean;
}

/**
 * The one convergence loop: runs `cycle()` (one ENorm cycle, returning the energy after it) until
 * |E_prev - E| <= tolerance * E_prev or maxCycles cycles ran; onCycle(cycle, E) after every cycle.
 */
export function converge(energyBefore: number, rule: StoppingRule, cycle: () => number): Convergence {
  const energies: number[] = [];
  let previous = energyBefore;
  for (let k = 1; k <= rule.maxCycles; k++) {
    const e = cycle();
    energies.push(e);
    rule.onCycle?.(k, e);
    if (Math.abs(previous - e) <= rule.tolerance * previous) return { energies, converged: true };
    previous = e;
  }
  return { energies, converged: false };
}
