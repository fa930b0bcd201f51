import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { balance, type BalanceReport } from '../engine/enorm.js';
import { isENormError } from '../errors.js';
import { readTfjsModelFile, writeTfjsModelFile } from '../model-io/files.js';
import { deviation, layerNorms, outputsOf, randomInputBatch, type LayerNorms } from './stats.js';

export interface CliIO {
  out: (text: string) => void;
  err: (text: string) => void;
}

const defaultIO: CliIO = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
};

/** Exit codes: 0 success, 1 expected failure (bad model, bad numbers), 2 usage error. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

const positive = (name: string) => (v: string) => {
  const x = Number(v);
  if (!Number.isFinite(x) || x <= 0) throw new InvalidArgumentError(`${name} must be a number > 0.`);
  return x;
};
const nonNegative = (name: string) => (v: string) => {
  const x = Number(v);
  if (!Number.isFinite(x) || x < 0) throw new InvalidArgumentError(`${name} must be a number >= 0.`);
  return x;
};
const count = (name: string) => (v: string) => {
  const x = Number(v);
  if (!Number.isInteger(x) || x < 0) throw new InvalidArgumentError(`${name} must be a whole number >= 0.`);
  return x;
};
const shapeList = (v: string) => {
  const dims = v.split(',').map((d) => Number(d.trim()));
  if (!dims.length || dims.some((d) => !Number.isInteger(d) || d <= 0)) throw new InvalidArgumentError('input shape must be positive integers separated by commas, e.g. 28,28,1.');
  return dims;
};

interface BalanceFlags {
  out: string;
  c: number;
  p: number;
  tolerance: number;
  maxCycles: number;
  includeBiases: boolean;
  residual: 'complete' | 'blocks';
  backend: 'auto' | 'simd' | 'scalar' | 'js';
  samples: number;
  seed: number;
  inputShape?: number[];
  maxDeviation: number;
  json: boolean;
}

export interface CliReport {
  model: string;
  output: string;
  written: string[];
  options: { c: number; p: number; tolerance: number; maxCycles: number; includeBiases: boolean; residual: string };
  backend: string;
  energyBefore: number;
  energyAfter: number;
  cycles: number;
  converged: boolean;
  groups: number;
  units: number;
  barriers: BalanceReport['barriers'];
  layers: (LayerNorms & { normAfter: number; spreadAfter: number })[];
  outputDeviation: { samples: number; absolute: number; relative: number; maxAbsOutput: number };
}

class CliFailure extends Error {}

async function runBalance(model: string, f: BalanceFlags): Promise<CliReport> {
  const tfjs = await readTfjsModelFile(model);
  const net = tfjs.network;
  const shape = f.inputShape ?? tfjs.inputShape;
  if (shape.some((d) => !(d > 0))) {
    throw new CliFailure(`${model}: the input shape [${tfjs.inputShape.join(', ')}] has open dimensions; give --input-shape`);
  }
  const x = randomInputBatch(shape, f.samples, f.seed);
  const before = f.samples ? outputsOf(net, x, f.samples, shape) : new Float64Array(0);
  const normsBefore = layerNorms(net, f.p);

  const report = await balance(net, {
    c: f.c, p: f.p, tolerance: f.tolerance, maxCycles: f.maxCycles, includeBiases: f.includeBiases, residual: f.residual, backend: f.backend,
  });

  const after = f.samples ? outputsOf(net, x, f.samples, shape) : new Float64Array(0);
  const dev = deviation(before, after);
  if (dev.relative > f.maxDeviation) {
    throw new CliFailure(`${model}: balancing moved the outputs by ${dev.relative.toExponential(2)} relative (over --max-deviation ${f.maxDeviation}); nothing written`);
  }
  const normsAfter = layerNorms(net, f.p);
  const written = await writeTfjsModelFile(tfjs, f.out);
  return {
    model,
    output: f.out,
    written,
    options: { c: f.c, p: f.p, tolerance: f.tolerance, maxCycles: f.maxCycles, includeBiases: f.includeBiases, residual: f.residual },
    backend: report.backend,
    energyBefore: report.energyBefore,
    energyAfter: report.energyAfter,
    cycles: report.cycles,
    converged: report.converged,
    groups: report.groups,
    units: report.units,
    barriers: report.barriers,
    layers: normsBefore.map((l, i) => ({ ...l, normAfter: normsAfter[i].norm, spreadAfter: normsAfter[i].spread })),
    outputDeviation: { samples: f.samples, absolute: dev.absolute, relative: dev.relative, maxAbsOutput: dev.scale },
  };
}

const g = (x: number) => (Math.abs(x) >= 1e4 || (x !== 0 && Math.abs(x) < 1e-3) ? x.toExponential(3) : x.toPrecision(5));

export function formatReport(r: CliReport): string {
  const change = ((r.energyAfter - r.energyBefore) / r.energyBefore) * 100;
  const lines = [
    `enorm balance ${r.model} -> ${r.output}`,
    `backend ${r.backend}; c=${r.options.c} p=${r.options.p} tolerance=${r.options.tolerance} max-cycles=${r.options.maxCycles}` +
      `${r.options.includeBiases ? ' include-biases' : ''} residual=${r.options.residual}`,
    `energy ${g(r.energyBefore)} -> ${g(r.energyAfter)} (${change.toFixed(2)}%) after ${r.cycles} cycle${r.cycles === 1 ? '' : 's'}, ` +
      `${r.converged ? 'converged' : 'NOT converged (raise --max-cycles or --tolerance)'}; ${r.units} units in ${r.groups} groups`,
    '',
  ];
  const header = ['layer', 'kind', 'units', `||W||_p before`, 'after', 'unit-norm spread before', 'after'];
  const rows = r.layers.map((l) => [l.layer, l.kind, String(l.units), g(l.norm), g(l.normAfter), g(l.spread), g(l.spreadAfter)]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  for (const row of [header, ...rows]) lines.push(row.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  '));
  lines.push('');
  if (r.barriers.length) {
    lines.push('left at scale 1:');
    for (const b of r.barriers) lines.push(`  ${b.layer}: ${b.reason}`);
  }
  lines.push(r.outputDeviation.samples
    ? `largest output deviation on ${r.outputDeviation.samples} random inputs: ${r.outputDeviation.absolute.toExponential(2)} ` +
      `(${r.outputDeviation.relative.toExponential(2)} of the largest |output| ${g(r.outputDeviation.maxAbsOutput)})`
    : 'output deviation not measured (--samples 0)');
  lines.push(`wrote ${r.written.join(', ')}`);
  return lines.join('\n') + '\n';
}

/** Runs the CLI on argv (without node and script); returns the exit code. Never throws for expected errors. */
export async function main(argv: string[], io: CliIO = defaultIO): Promise<number> {
  let code: number = EXIT.ok;
  const program = new Command()
    .name('enorm')
    .description('Equi-normalization (ENorm) of neural networks: balance the weights of a model without changing its function.')
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err });

  program
    .command('balance')
    .description('balance a TensorFlow.js layers model (model.json + weight shards) and write the result')
    .argument('<model.json>', 'the tfjs layers model to balance')
    .requiredOption('-o, --out <dir>', 'directory for the balanced model.json and weights.bin')
    .option('--c <C>', 'asymmetric scaling coefficient c > 0 (fixed point ||out|| = c ||in||)', positive('c'), 1)
    .option('--p <P>', 'the norm, 0 < p <= 10', positive('p'), 2)
    .option('--tolerance <T>', 'stop when the relative energy change is at most T', nonNegative('tolerance'), 1e-6)
    .option('--max-cycles <N>', 'most ENorm cycles', count('max-cycles'), 1000)
    .option('--include-biases', 'count |bias|^p in the cost (biases are always rescaled)', false)
    .option('--residual <mode>', "'complete' (residual streams are balanced) or 'blocks' (only units inside blocks)", 'complete')
    .option('--backend <name>', 'auto, simd, scalar or js', 'auto')
    .option('--samples <N>', 'random inputs for the output-deviation check', count('samples'), 64)
    .option('--seed <S>', 'seed of the random inputs', count('seed'), 1)
    .option('--input-shape <dims>', 'per-example input shape, e.g. 28,28,1 (when the model leaves it open)', shapeList)
    .option('--max-deviation <x>', 'refuse to write if outputs move by more than x relative', nonNegative('max-deviation'), 1e-3)
    .option('--json', 'print the report as JSON', false)
    .action(async (model: string, flags: BalanceFlags) => {
      const report = await runBalance(model, flags);
      io.out(flags.json ? JSON.stringify(report, null, 2) + '\n' : formatReport(report));
    });

  try {
    if (argv.length === 0) {
      io.err(program.helpInformation());
      return EXIT.usage;
    }
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      // help and version exit with 0; commander already printed its one-line error
      code = e.exitCode === 0 ? EXIT.ok : EXIT.usage;
    } else if (isENormError(e) || e instanceof CliFailure) {
      io.err(`enorm: ${e.message}\n`);
      code = EXIT.failure;
    } else {
      throw e;
    }
  }
  return code;
}
