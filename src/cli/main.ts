import { Command, CommanderError } from 'commander';
import { isENormError } from '../errors.js';
import { FORMATS } from '../model-io/formats.js';
import { CliFailure } from './failure.js';
import { parseFlags, usageJson, type BalanceFlags } from './flags.js';
import { errorJson, errorLine, usageLine } from './output.js';
import { progressFor } from './progress.js';
import { formatReport, reportJson } from './report.js';
import { runBalance } from './run.js';
import { VERSION } from './version.js';

export type { CliReport, OutputDeviation } from './run.js';

export interface CliIO {
  out: (text: string) => void;
  err: (text: string) => void;
  /** Whether `err` is a terminal: progress is shown only then (and not with --quiet). Default false. */
  isTTY?: boolean;
}

const defaultIO: CliIO = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  isTTY: process.stderr.isTTY === true,
};

/** Exit codes: 0 success, 1 expected failure (bad model, bad numbers, limits, deviation), 2 usage error. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

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
    .description(`balance a model (${FORMATS.map((f) => `${f.name}: ${f.argument}`).join(', ')}) and write the result`)
    .argument(`<${FORMATS.map((f) => f.argument).join('|')}>`, 'the model to balance')
    .requiredOption('-o, --out <dir>', `where to write: ${FORMATS.map((f) => `a ${f.output === 'dir' ? 'folder' : 'file'} for ${f.name}`).join(', ')}`)
    .addHelpText('after', HELP_AFTER);
  for (const option of parseFlags()) balanceCommand.addOption(option);
  balanceCommand.action(async (model: string, flags: BalanceFlags) => {
    const progress = progressFor(io.err, { tty: io.isTTY === true, quiet: flags.quiet, p: flags.p });
    // The header comes before any work, so a long read or plan is never silent.
    progress.phase(`enorm balance ${model} -> ${flags.out}: c=${flags.c} p=${flags.p} tolerance=${flags.tolerance} stop-on=${flags.stopOn} omega=${flags.omega} max-cycles=${flags.maxCycles} backend=${flags.backend}` +
      `${flags.quantize ? ` quantize=${flags.quantize}${flags.perChannel ? ' per-channel' : ''}` : ''}${flags.foldBn ? ' fold-bn' : ''}`);
    try {
      const report = await runBalance(model, flags, progress);
      io.out(flags.json ? reportJson(report) : formatReport(report));
    } finally {
      progress.done();
    }
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
