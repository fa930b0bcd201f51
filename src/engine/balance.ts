import type { Network } from '../network/layers.js';
import type { Backend, BackendName } from './backend.js';
import { ENorm, type GroupScales } from './enorm.js';
import { converge } from '../plan/converge.js';
import type { Barrier } from '../plan/ir.js';
import type { BalanceOptions } from '../plan/options.js';
import { prepare, type Prepared } from '../plan/prepare.js';

export interface BalanceReport {
  /**
   * E = sum over weight tensors of ||W||_p^p (plus biases with includeBiases), before the first cycle;
   * for p = Infinity, the sum over those tensors of max |w|.
   */
  energyBefore: number;
  energyAfter: number;
  /** Energy after each cycle. */
  energies: number[];
  cycles: number;
  /**
   * stopOn 'fixed-point' (default): the estimated distance to the fixed point was at most
   * `tolerance`. 'energy': the relative energy change of the last cycle was at most `tolerance`.
   */
  converged: boolean;
  /** max over units of |log d_i| in the last cycle (0 when no cycle ran): how far it still moved the scales. */
  maxScaleChange: number;
  /** The estimated distance of the scales to the fixed point after the last cycle (Infinity while unknown). */
  distance: number;
  /** The over-relaxation factor of the last cycle (1: the plain exact cycle). */
  omega: number;
  scales: GroupScales[];
  /** Units that were left at scale 1, and why (non-homogeneous activations, residual mode, ...). */
  barriers: Barrier[];
  backend: BackendName;
  /** Number of groups and of units balanced. */
  groups: number;
  units: number;
}

/**
 * Balances a network in place: over-relaxed ENorm cycles (omega 'auto' by default) until the
 * scales are within `tolerance` of the fixed point (or the energy stalls, with stopOn 'energy'),
 * or `maxCycles` cycles ran. The cycles only read the weights; one pass writes them at the end.
 * On any error no array is changed.
 */
export async function balance(net: Network, options: BalanceOptions = {}): Promise<BalanceReport> {
  // One read and one resolution of the options: onCycle is the function that was checked.
  return balancePrepared(prepare(net, options));
}

/** `balance` of a network that prepare() already read, validated and planned (the CLI prepares once). */
export async function balancePrepared(prepared: Prepared): Promise<BalanceReport> {
  const engine = await ENorm.fromPrepared(prepared);
  try {
    const energyBefore = engine.energy();
    const { energies, converged, maxScaleChange, distance, omega } = converge(energyBefore, prepared.options, (w) => {
      engine.cycle(w);
      return { energy: engine.energy(), maxScaleChange: engine.maxScaleChange() };
    });
    engine.download(); // re-checks the arrays: onCycle may have detached or resized one
    return {
      energyBefore,
      energyAfter: energies.length ? energies[energies.length - 1] : energyBefore,
      energies,
      cycles: energies.length,
      converged,
      maxScaleChange,
      distance,
      omega,
      scales: engine.scales(),
      barriers: engine.plan.barriers,
      backend: (engine.backend as Backend).name,
      groups: engine.plan.groups.length,
      units: engine.units,
    };
  } finally {
    engine.dispose();
  }
}
