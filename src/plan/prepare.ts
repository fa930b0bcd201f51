import type { Network } from '../network/layers.js';
import { readNetwork } from '../network/read.js';
import { validateLayers } from '../network/validate.js';
import { compilePlan } from './compile.js';
import type { Plan } from './ir.js';
import { resolveOptions, type BalanceOptions, type ResolvedOptions } from './options.js';

/** A network read once, validated, and compiled under options resolved once. */
export interface Prepared {
  /** The plain copy of the description that was validated and planned (getters and proxies read once). */
  network: Network;
  options: ResolvedOptions;
  plan: Plan;
}

/**
 * The one pipeline in front of every engine: resolve the options -> read the description -> validate -> compile.
 * Throws ENormError and touches no array.
 */
export function prepare(net: Network, options: BalanceOptions = {}): Prepared {
  const resolved = resolveOptions(options);
  const network = readNetwork(net);
  validateLayers(network);
  return { network, options: resolved, plan: compilePlan(network, resolved) };
}

