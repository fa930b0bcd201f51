import type { Network } from '../network/layers.js';
import type { Backend, BackendName } from './backend.js';
import { ENorm, type GroupScales } from './enorm.js';
import { readOptions, resolveOptions, type BalanceOptions } from './options.js';
import type { Barrier } from './plan.js';

export interface BalanceReport {
  /** E = sum over weight tensors of ||W||_p^p (plus biases with includeBiases), before the first cycle. */
  energyBefore: number;
  energyAfter: number;
  /** Energy after each cycle. */
  energies: number[];
  cycles: number;
  /** The relative energy change of the last cycle was at most `tolerance`. */
  converged: boolean;
  scales: GroupScales[];
  /** Units that were left at scale 1, and why (non-homogeneous activations, residual mode, ...). */
  barriers: Barrier[];
  backend: BackendName;
  /** Number of groups and of units balanced. */
  groups: number;
  units: number;
}

/**
 * Balances a network in place: ENorm cycles until the relative energy change is at most
 * `tolerance` or `maxCycles` cycles ran. On any error no array is changed.
 */
export async function balance(net: Network, options: BalanceOptions = {}): Promise<BalanceReport> {
  // One read of the options: onCycle is the function that was checked.
  const opts = readOptions(options);
  const { tolerance, maxCycles } = resolveOptions(opts);
  const engine = await ENorm.create(net, opts);
  try {
    const energyBefore = engine.energy();
    const energies: number[] = [];
    let converged = false;
    let previous = energyBefore;
    for (let cycle = 1; cycle <= maxCycles; cycle++) {
      engine.cycle();
      const e = engine.energy();
      energies.push(e);
      opts.onCycle?.(cycle, e);
      if (Math.abs(previous - e) <= tolerance * previous) {
        converged = true;
        break;
      }
      previous = e;
    }
    engine.download(); // re-checks the arrays: onCycle may have detached or resized one
    return {
      energyBefore,
      energyAfter: energies.length ? energies[energies.length - 1] : energyBefore,
      energies,
      cycles: energies.length,
      converged,
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
