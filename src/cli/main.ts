import { Command, CommanderError } from 'commander';
import { balancePrepared, type BalanceReport } from '../engine/enorm.js';
import { isENormError } from '../errors.js';
import { formatFor } from '../model-io/formats.js';
import type { Network } from '../network/layers.js';
import { prepare } from '../plan/prepare.js';
import { checkInputShape, DeviationCheck, deviationAccepted } from './check.js';
import { CliFailure } from './failure.js';
import { parseFlags, usageJson, type BalanceFlags } from './flags.js';
import { errorJson, errorLine, usageLine } from './output.js';
import { formatReport } from './report.js';
import { layerNorms, type LayerNorms } from './stats.js';
import { VERSION } from './version.js';

export interface CliIO {
  out: (text: string) => void;
  err: (text: string) => void;
}

const defaultIO: CliIO = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
};

/** Exit codes: 0 success, 1 expected failure (bad model, bad numbers, limits, deviation), 2 usage error. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

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

/**
 * The deviation check for this run, validated before anything is computed: the input shape
 * (--input-shape, else the model's) must fit the weights, and the check must fit its limits.
 * With --samples 0 a fully known shape of a single-input model is still checked against the weights.
 */
function prepareCheck(model: string, read: { network: Network; inputShape: number[] }, f: BalanceFlags): DeviationCheck | undefined {
  const shape = f.inputShape ?? read.inputShape;
  const where = `the input shape${f.inputShape ? ' given by --input-shape' : ''}`;
  const open = shape.some((d) => !(d > 0));
  const inputs = read.network.reduce((n, l) => n + (l.kind === 'input' ? 1 : 0), 0);
  if (f.samples === 0) {
    if (!open && inputs <= 1) checkInputShape(read.network, shape, `${model}: ${where}`);
    return undefined;
  }
  if (open) {
    throw new CliFailure('E_SHAPE', `${model}: the input shape [${shape.map((d) => (d > 0 ? d : '?')).join(', ')}] has open dimensions; give --input-shape (or --samples 0)`);
  }
  return new DeviationCheck(read.network, shape, f.samples, f.seed, model, where);
}

async function runBalance(model: string, f: BalanceFlags): Promise<CliReport> {
  const format = formatFor(model);
  const read = await format.read(model);
  const view = format.verification(read);
  // Read, validated and planned once (NaN weights, shapes, aliasing, graph and width errors come
  // first, with their own messages; nothing is written). Then the input shape and the check's
  // limits, then the check itself. prepared.network holds the same Float32Arrays as view.network.
  const prepared = prepare(view.network, {
    c: f.c, p: f.p, tolerance: f.tolerance, maxCycles: f.maxCycles, includeBiases: f.includeBiases, residual: f.residual, backend: f.backend,
  });
  const net = prepared.network;
  const check = prepareCheck(model, view, f);
  check?.recordBefore(net);
  const normsBefore = layerNorms(net, f.p);

  const report = await balancePrepared(prepared);

  const dev = check ? check.compareAfter(net) : { absolute: 0, relative: 0, scale: 0 };
  if (!deviationAccepted(dev, f.maxDeviation)) {
    const how = Number.isFinite(dev.relative) ? `by ${dev.relative.toExponential(2)} relative` : `to non-finite values (deviation ${dev.relative})`;
    throw new CliFailure('E_DEVIATION', `${model}: balancing moved the outputs ${how} (over --max-deviation ${f.maxDeviation}); nothing written`);
  }
  const normsAfter = layerNorms(net, f.p);
  const written = await format.write(read, f.out);
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

export { formatReport } from './report.js';

const HELP_AFTER = `
Exit status: 0 written; 1 the model, a limit or the deviation check failed (one line on stderr,
nothing written); 2 usage error (before the model is read); 70 internal error (a bug: please report it).
With --json, the report goes to stdout and any error to stderr as one JSON object:
{"error": {"code": "E_...", "message": "...", "details": {...}}} (usage errors have code E_USAGE).`;

/** Runs the CLI on argv (without node and script); returns the exit code. Never throws for expected errors. */
export async function main(argv: string[], io: CliIO = defaultIO): Promise<number> {
  const json = usageJson(argv);
  let usageMessage = '';
  const program = new Command()
    .name('enorm')
    .description('Equi-normalization (ENorm) of neural networks: balance the weights of a model without changing its function.')
    .version(VERSION, '-V, --version', 'print the version')
    .exitOverride()
    .configureOutput({
      writeOut: io.out,
      writeErr: io.err,
      // With --json a usage error becomes the JSON object below instead of commander's text.
      outputError: (text, write) => { if (json) usageMessage = text; else write(usageLine(text)); },
    })
    .addHelpText('after', HELP_AFTER);

  const balanceCommand = program
    .command('balance')
    .description('balance a TensorFlow.js layers model (model.json + weight shards) and write the result')
    .argument('<model.json>', 'the tfjs layers model to balance')
    .requiredOption('-o, --out <dir>', 'directory for the balanced model.json and its weights file')
    .addHelpText('after', HELP_AFTER);
  for (const option of parseFlags()) balanceCommand.addOption(option);
  balanceCommand.action(async (model: string, flags: BalanceFlags) => {
    const report = await runBalance(model, flags);
    io.out(flags.json ? JSON.stringify(report, null, 2) + '\n' : formatReport(report));
  });

  try {
    if (argv.length === 0) {
      io.err(program.helpInformation());
      return EXIT.usage;
    }
    await program.parseAsync(argv, { from: 'user' });
    return EXIT.ok;
  } catch (e) {
    if (e instanceof CommanderError) {
      // help and version exit with 0; otherwise commander has printed (or, with --json, handed us) its one-line error
      if (e.exitCode === 0) return EXIT.ok;
      if (json) io.err(errorJson('E_USAGE', usageMessage.replace(/^error: /, '').trim() || e.message, {}));
      return EXIT.usage;
    }
    if (isENormError(e) || e instanceof CliFailure) {
      io.err(json ? errorJson(e.code, e.message, e.details) : errorLine(e.message));
      return EXIT.failure;
    }
    throw e;
  }
}
