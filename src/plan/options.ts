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

export interface BalanceOptions extends ENormOptions {
  /**
   * Finite p: stop when |E_prev - E| <= tolerance * E_prev. p = Infinity: stop when the cycle's
   * maxScaleChange (max over units of |log d|) is <= tolerance. Default 1e-6.
   */
  tolerance?: number;
  /** Most cycles to run. Default 1000. */
  maxCycles?: number;
  /** Called after every cycle with its 1-based index, the energy and the cycle's largest scale change. */
  onCycle?: OnCycle;
}

/** What a cycle reports besides the energy. */
export interface CycleInfo {
  /** max over the balanced units of |log d_i|, d_i this cycle's scale of unit i (0 when nothing moved). */
  maxScaleChange: number;
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
  /** The onCycle function that was checked (options are read once). */
  onCycle?: OnCycle;
}

/** The backend option's values; engine/select.ts's BackendChoice is 'auto' | BackendName, the same set. */
export const BACKEND_CHOICES = ['auto', 'simd', 'scalar', 'js'] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];

/** Largest p for which |w|^p stays inside float64 for |w| in [1e-30, 1e30]. */
export const MAX_P = 10;

const OPTION_KEYS = ['c', 'p', 'tolerance', 'maxCycles', 'includeBiases', 'residual', 'backend', 'onCycle'] as const;

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
  return { c, p, includeBiases, residual, backend, tolerance, maxCycles, ...(o.onCycle ? { onCycle: o.onCycle } : {}) };
}
