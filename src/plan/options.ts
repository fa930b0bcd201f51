import { describeValue } from '../describe.js';
import { ENormError } from '../errors.js';
import type { ResidualMode } from './compile.js';

export interface ENormOptions {
  /** Asymmetric scaling coefficient c > 0: the fixed point is ||out|| = c * ||in||. Default 1. */
  c?: number;
  /**
   * The norm, 0 < p <= 10, or Infinity: range equalisation, where a unit's cost is max |w| and the
   * energy the sum over tensors of max |w| (docs/ALGORITHM.md section 3). Default 2 (the weight-decay term).
   */
  p?: number;
  /** Count |bias|^p (and BN |beta|^p) in the unit's incoming cost and in the energy. Biases are always rescaled. Default false. */
  includeBiases?: boolean;
  /** 'complete' (default): each residual stream is one group; 'blocks': only units inside residual blocks move. */
  residual?: ResidualMode;
  /** 'auto' (default): SIMD Wasm when the runtime supports it, else scalar Wasm. 'js': plain TypeScript kernels. */
  backend?: BackendChoice;
}

/** What `balance` stops on: the estimated distance to the fixed point, or the energy's relative change. */
export type StopOn = 'fixed-point' | 'energy';

export interface BalanceOptions extends ENormOptions {
  /**
   * 'fixed-point' (default): stop when the estimated distance of the scales to the fixed point,
   * max_i |log D_i - log D*_i| (a relative distance), is at most `tolerance`; it is the last
   * cycle's largest scale change over (1 - the measured contraction rate), so `converged` means the
   * weights are within about that (twice it) of the minimiser. 'energy': stop when
   * |E_prev - E| <= tolerance * E_prev, which can hold far from the minimiser on deep nets.
   * Default tolerance 1e-6 (float32 scales reach about 1e-7 per unit; see docs/ALGORITHM.md 3c).
   */
  tolerance?: number;
  stopOn?: StopOn;
  /**
   * Over-relaxation of the cycle, u <- u + omega (u* - u) per unit in log scale. 'auto' (default):
   * picked from the measured contraction rate where it keeps the monotone descent (finite p, c = 1),
   * else 1. A number in (0, 2) fixes it; 1 is the plain exact cycle.
   */
  omega?: 'auto' | number;
  /** Most cycles to run. Default 1000. */
  maxCycles?: number;
  /** Called after every cycle with its 1-based index, the energy and the cycle's largest scale change. */
  onCycle?: OnCycle;
}

/** What a cycle reports besides the energy. */
export interface CycleInfo {
  /** max over the balanced units of |log d_i|, d_i this cycle's scale of unit i (0 when nothing moved). */
  maxScaleChange: number;
  /** The estimated distance to the fixed point (Infinity while the contraction rate is unknown). */
  distance: number;
  /** The over-relaxation factor this cycle ran with. */
  omega: number;
}

export type OnCycle = (cycle: number, energy: number, info: CycleInfo) => void;

export interface ResolvedOptions {
  c: number;
  p: number;
  includeBiases: boolean;
  residual: ResidualMode;
  backend: BackendChoice;
  tolerance: number;
  maxCycles: number;
  stopOn: StopOn;
  omega: 'auto' | number;
  /** The onCycle function that was checked (options are read once). */
  onCycle?: OnCycle;
}

/** The backend option's values; engine/select.ts's BackendChoice is 'auto' | BackendName, the same set. */
export const BACKEND_CHOICES = ['auto', 'simd', 'scalar', 'js'] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];

/** Largest p for which |w|^p stays inside float64 for |w| in [1e-30, 1e30]. */
export const MAX_P = 10;

const OPTION_KEYS = ['c', 'p', 'tolerance', 'maxCycles', 'stopOn', 'omega', 'includeBiases', 'residual', 'backend', 'onCycle'] as const;

/**
 * A plain copy of the options the package knows, each read exactly once: a getter that throws,
 * or options that are not an object, are E_OPTION; a getter cannot give one value to the
 * check and another to the run.
 */
export function readOptions(o: unknown = {}): BalanceOptions {
  if (o === undefined) return {};
  let isObject: boolean;
  try {
    isObject = o !== null && typeof o === 'object' && !Array.isArray(o);
  } catch {
    isObject = false; // Array.isArray throws on a revoked Proxy
  }
  if (!isObject) throw new ENormError('E_OPTION', `options must be an object, got ${describeValue(o)}`);
  const copy: Record<string, unknown> = {};
  for (const key of OPTION_KEYS) {
    let value: unknown;
    try {
      value = (o as Record<string, unknown>)[key];
    } catch (e) {
      throw new ENormError('E_OPTION', `reading option '${key}' threw: ${describeValue(e instanceof Error ? e.message : e)}`);
    }
    if (value !== undefined) copy[key] = value;
  }
  return copy as BalanceOptions;
}

export function resolveOptions(options: BalanceOptions = {}): ResolvedOptions {
  const o = readOptions(options);
  const bad = (msg: string): never => { throw new ENormError('E_OPTION', msg); };
  const c = o.c ?? 1;
  const p = o.p ?? 2;
  const tolerance = o.tolerance ?? 1e-6;
  const maxCycles = o.maxCycles ?? 1000;
  if (typeof c !== 'number' || !Number.isFinite(c) || c <= 0) bad(`c must be a finite number > 0, got ${describeValue(c)}`);
  if (typeof p !== 'number' || Number.isNaN(p) || p <= 0) bad(`p must be a finite number > 0, got ${describeValue(p)} (or Infinity: range equalisation)`);
  if (p > MAX_P && p !== Infinity) bad(`p must be at most ${MAX_P} (|w|^p is summed in float64) or Infinity, got ${p}`);
  if (typeof tolerance !== 'number' || !(tolerance >= 0) || !Number.isFinite(tolerance)) bad(`tolerance must be a finite number >= 0, got ${describeValue(tolerance)}`);
  if (!Number.isInteger(maxCycles) || maxCycles < 0) bad(`maxCycles must be an integer >= 0, got ${describeValue(maxCycles)}`);
  const includeBiases = o.includeBiases ?? false;
  if (typeof includeBiases !== 'boolean') bad(`includeBiases must be a boolean, got ${describeValue(includeBiases)}`);
  const residual = o.residual ?? 'complete';
  if (residual !== 'complete' && residual !== 'blocks') bad(`residual must be 'complete' or 'blocks', got ${describeValue(residual)}`);
  const backend = o.backend ?? 'auto';
  if (!(BACKEND_CHOICES as readonly unknown[]).includes(backend)) bad(`backend must be 'auto', 'simd', 'scalar' or 'js', got ${describeValue(backend)}`);
  if (o.onCycle !== undefined && typeof o.onCycle !== 'function') bad('onCycle must be a function');
  const stopOn = o.stopOn ?? 'fixed-point';
  if (stopOn !== 'fixed-point' && stopOn !== 'energy') bad(`stopOn must be 'fixed-point' or 'energy', got ${describeValue(stopOn)}`);
  const omega = o.omega ?? 'auto';
  if (omega !== 'auto' && !(typeof omega === 'number' && omega > 0 && omega < 2)) bad(`omega must be 'auto' or a number in (0, 2), got ${describeValue(omega)}`);
  return { c, p, includeBiases, residual, backend, tolerance, maxCycles, stopOn, omega, ...(o.onCycle ? { onCycle: o.onCycle } : {}) };
}
