/**
 * The balance command's flags and their validation: every value is checked by commander
 * while parsing, so a bad flag is a usage error (exit 2) before the model is read.
 */
import { InvalidArgumentError, Option } from 'commander';
import { MAX_P } from '../plan/options.js';

export interface BalanceFlags {
  out: string;
  c: number;
  p: number;
  tolerance: number;
  maxCycles: number;
  stopOn: 'fixed-point' | 'energy';
  omega: 'auto' | number;
  includeBiases: boolean;
  residual: 'complete' | 'blocks';
  backend: 'auto' | 'simd' | 'scalar' | 'js';
  samples: number;
  seed: number;
  inputShape?: number[];
  maxDeviation: number;
  json: boolean;
  /** --quantize: the before/after quantisation report at this width. */
  quantize?: 'int8' | 'int4';
  perChannel: boolean;
  /** --inputs FILE: the check's inputs (.npy float32 or a JSON array). */
  inputs?: string;
  quiet: boolean;
  foldBn: boolean;
  requireCheck: boolean;
}

/** A decimal number as typed (no empty strings, which Number() reads as 0; no hex, no 'Infinity'). */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

function number(v: string): number {
  const t = v.trim();
  return DECIMAL.test(t) ? Number(t) : NaN;
}

const positive = (name: string) => (v: string) => {
  const x = number(v);
  if (!Number.isFinite(x) || x <= 0) throw new InvalidArgumentError(`${name} must be a number > 0.`);
  return x;
};
/** A number in (0, MAX_P], or 'inf' / 'Infinity' (any case) for range equalisation (p = ∞). */
const normP = (v: string) => {
  if (/^\s*(inf|infinity)\s*$/i.test(v)) return Infinity;
  const x = number(v);
  if (!Number.isFinite(x) || x <= 0 || x > MAX_P) throw new InvalidArgumentError(`p must be a number > 0 and <= ${MAX_P}, or inf.`);
  return x;
};
const nonNegative = (name: string) => (v: string) => {
  const x = number(v);
  if (!Number.isFinite(x) || x < 0) throw new InvalidArgumentError(`${name} must be a number >= 0.`);
  return x;
};
const count = (name: string, max = Number.MAX_SAFE_INTEGER) => (v: string) => {
  const x = number(v);
  if (!Number.isInteger(x) || x < 0 || x > max) throw new InvalidArgumentError(`${name} must be a whole number >= 0${max < Number.MAX_SAFE_INTEGER ? ` and <= ${max}` : ''}.`);
  return x;
};
/** At most 8 dimensions, each a positive whole number (their fit to the weights is checked after reading the model). */
const shapeList = (v: string) => {
  const dims = v.split(',').map(number);
  if (dims.length > 8 || dims.some((d) => !Number.isSafeInteger(d) || d <= 0)) {
    throw new InvalidArgumentError('input shape must be 1 to 8 positive whole numbers separated by commas, e.g. 28,28,1.');
  }
  return dims;
};

/** --omega: 'auto' or a decimal in (0, 2). */
const omegaFlag = (v: string): 'auto' | number => {
  if (v.trim() === 'auto') return 'auto';
  const x = number(v);
  if (!(x > 0 && x < 2)) throw new InvalidArgumentError("omega must be 'auto' or a number in (0, 2).");
  return x;
};

/** The options of `enorm balance` after the required -o. */
export function parseFlags(): Option[] {
  return [
    new Option('--c <C>', 'asymmetric scaling coefficient c > 0 (fixed point ||out|| = c ||in||)').argParser(positive('c')).default(1),
    new Option('--p <P>', `the norm, 0 < p <= ${MAX_P}, or inf (range equalisation: max|w|)`).argParser(normP).default(2),
    new Option('--tolerance <T>', 'stop when the scales are within T of the fixed point (relative; --stop-on energy: the relative energy change)').argParser(nonNegative('tolerance')).default(1e-6),
    new Option('--stop-on <rule>', "'fixed-point' (the estimated distance to the minimiser) or 'energy' (its relative change)").choices(['fixed-point', 'energy']).default('fixed-point'),
    new Option('--omega <w>', "over-relaxation: 'auto' (SOR where it keeps the descent: finite p, c = 1), or a number in (0, 2); 1 is the plain cycle").argParser(omegaFlag).default('auto'),
    new Option('--max-cycles <N>', 'most ENorm cycles').argParser(count('max-cycles')).default(1000),
    new Option('--include-biases', 'count |bias|^p in the cost (biases are always rescaled)').default(false),
    new Option('--residual <mode>', "'complete' (residual streams are balanced) or 'blocks' (only units inside blocks)").choices(['complete', 'blocks']).default('complete'),
    new Option('--backend <name>', 'where the cycles run').choices(['auto', 'simd', 'scalar', 'js']).default('auto'),
    new Option('--samples <N>', 'random inputs for the output-deviation check (0 skips it)').argParser(count('samples')).default(64),
    new Option('--seed <S>', 'seed of the random inputs').argParser(count('seed', 2 ** 32 - 1)).default(1),
    new Option('--input-shape <dims>', 'per-example input shape, e.g. 28,28,1 (when the model leaves it open)').argParser(shapeList),
    new Option('--max-deviation <x>', 'refuse to write if outputs move by more than x relative').argParser(nonNegative('max-deviation')).default(1e-3),
    new Option('--json', 'print the report as JSON on stdout; errors as one JSON object on stderr').default(false),
    new Option('--quantize <bits>', 'add a before/after report of symmetric weight quantisation (SQNR in dB)').choices(['int8', 'int4']),
    new Option('--per-channel', 'with --quantize: one scale per output channel instead of per tensor').default(false),
    new Option('--inputs <file>', 'check inputs (.npy float32, or a JSON array; first axis the batch) instead of random ones'),
    new Option('--quiet', 'no progress on stderr (it is shown only when stderr is a terminal)').default(false),
    new Option('--fold-bn', 'fold batch norms into the layer before them, then balance (the BN layers are gone from the output)').default(false),
    new Option('--require-check', 'fail (nothing written) when the output check cannot run, e.g. its runtime is not installed').default(false),
  ];
}

/** Whether --json was asked for, read before parsing so that usage errors can be JSON too ('--' ends the options). */
export function usageJson(argv: readonly string[]): boolean {
  for (const a of argv) {
    if (a === '--') return false;
    if (a === '--json') return true;
  }
  return false;
}
