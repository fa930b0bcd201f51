import { ENormError } from '../errors.js';
import type { ResidualMode } from '../network/compile.js';
import type { BackendChoice } from './select.js';

export interface ENormOptions {
  /** Asymmetric scaling coefficient c > 0: the fixed point is ||out|| = c * ||in||. Default 1. */
  c?: number;
  /** The norm, 0 < p <= 10. Default 2 (the weight-decay term). */
  p?: number;
  /** Count |bias|^p (and BN |beta|^p) in the unit's incoming cost and in the energy. Biases are always rescaled. Default false. */
  includeBiases?: boolean;
  /** 'complete' (default): each residual stream is one group; 'blocks': only units inside residual blocks move. */
  residual?: ResidualMode;
  /** 'auto' (default): SIMD Wasm when the runtime supports it, else scalar Wasm. 'js': plain TypeScript kernels. */
  backend?: BackendChoice;
}

export interface BalanceOptions extends ENormOptions {
  /** Stop when |E_prev - E| <= tolerance * E_prev. Default 1e-6. */
  tolerance?: number;
  /** Most cycles to run. Default 1000. */
  maxCycles?: number;
  /** Called after every cycle with its 1-based index and the energy. */
  onCycle?: (cycle: number, energy: number) => void;
}

export interface ResolvedOptions {
  c: number;
  p: number;
  includeBiases: boolean;
  residual: ResidualMode;
  backend: BackendChoice;
  tolerance: number;
  maxCycles: number;
}

/** Largest p for which |w|^p stays inside float64 for |w| in [1e-30, 1e30]. */
export const MAX_P = 10;

export function resolveOptions(o: BalanceOptions = {}): ResolvedOptions {
  if (o === null || typeof o !== 'object') throw new ENormError('E_OPTION', 'options must be an object');
  const bad = (msg: string): never => { throw new ENormError('E_OPTION', msg); };
  const c = o.c ?? 1;
  const p = o.p ?? 2;
  const tolerance = o.tolerance ?? 1e-6;
  const maxCycles = o.maxCycles ?? 1000;
  if (typeof c !== 'number' || !Number.isFinite(c) || c <= 0) bad(`c must be a finite number > 0, got ${String(c)}`);
  if (typeof p !== 'number' || !Number.isFinite(p) || p <= 0) bad(`p must be a finite number > 0, got ${String(p)}`);
  if (p > MAX_P) bad(`p must be at most ${MAX_P} (|w|^p is summed in float64), got ${p}`);
  if (typeof tolerance !== 'number' || !(tolerance >= 0) || !Number.isFinite(tolerance)) bad(`tolerance must be a finite number >= 0, got ${String(tolerance)}`);
  if (!Number.isInteger(maxCycles) || maxCycles < 0) bad(`maxCycles must be an integer >= 0, got ${String(maxCycles)}`);
  const includeBiases = o.includeBiases ?? false;
  if (typeof includeBiases !== 'boolean') bad(`includeBiases must be a boolean, got ${String(includeBiases)}`);
  const residual = o.residual ?? 'complete';
  if (residual !== 'complete' && residual !== 'blocks') bad(`residual must be 'complete' or 'blocks', got ${String(residual)}`);
  const backend = o.backend ?? 'auto';
  if (!['auto', 'simd', 'scalar', 'js'].includes(backend)) bad(`backend must be 'auto', 'simd', 'scalar' or 'js', got ${String(backend)}`);
  if (o.onCycle !== undefined && typeof o.onCycle !== 'function') bad('onCycle must be a function');
  return { c, p, includeBiases, residual, backend, tolerance, maxCycles };
}
