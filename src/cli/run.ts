/**
 * What `enorm balance` does, in order: check -o, read the model (and --inputs), record the
 * check's outputs, fold batch norms (--fold-bn), plan, take the quantisation figures, balance,
 * compare, and write only when the outputs stayed within --max-deviation.
 */
import { stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { balancePrepared, type BalanceReport } from '../engine/enorm.js';
import type { ModelFormat, ModelRunner } from '../model-io/format.js';
import { formatFor } from '../model-io/formats.js';
import type { Network } from '../network/layers.js';
import { prepare } from '../plan/prepare.js';
import { checkInputShape, DeviationCheck, deviationAccepted, type Deviation } from './check.js';
import { CliFailure } from './failure.js';
import type { BalanceFlags } from './flags.js';
import { checkInputsFor, readInputsFile, type CheckInputs } from './inputs.js';
import type { Progress } from './progress.js';
import { quantizationReport, quantSnapshot, type QuantizationReport, type QuantizationSettings, type QuantSnapshot } from './quantization.js';
import { layerNorms, type LayerNorms } from './stats.js';

/** The measured deviation, or why the check did not run (its runtime is not installed). */
export type OutputDeviation =
  | { samples: number; inputs: 'random' | string; checkedBy: string; absolute: number; relative: number; maxAbsOutput: number }
  | { samples: number; skipped: string; inputs?: undefined; checkedBy?: undefined; absolute?: undefined; relative?: undefined; maxAbsOutput?: undefined };

export interface CliReport {
  model: string;
  format: string;
  output: string;
  written: string[];
  /** p is Infinity for range equalisation ("inf" in --json). */
  options: { c: number; p: number; tolerance: number; stopOn: string; omega: 'auto' | number; maxCycles: number; includeBiases: boolean; residual: string };
  backend: string;
  energyBefore: number;
  energyAfter: number;
  cycles: number;
  converged: boolean;
  /** The last cycle's max over units of |log d|. */
  maxScaleChange: number;
  /** The estimated distance of the scales to the fixed point (what --stop-on fixed-point stops on; null while unknown). */
  distance: number | null;
  /** The over-relaxation factor of the last cycle. */
  omega: number;
  groups: number;
  units: number;
  barriers: BalanceReport['barriers'];
  /** With --fold-bn: how many batch norms were folded into the layer before them. */
  foldedBatchNorms?: number;
  layers: (LayerNorms & { normAfter: number; spreadAfter: number })[];
  outputDeviation: OutputDeviation;
  quantization?: QuantizationReport;
}

const countBatchNorms = (net: Network) => net.reduce((n, l) => n + (l.kind === 'batch-norm' ? 1 : 0), 0);

/** -o for a 'file' format: not the input itself, and its folder exists; for a 'dir' format, write() checks it. */
async function checkOutputPath(format: ModelFormat, model: string, out: string): Promise<void> {
  if (format.output !== 'file') return;
  if (resolve(out) === resolve(model)) throw new CliFailure('E_OPTION', `-o ${out} is the input model itself; name a new file`);
  const folder = await stat(dirname(resolve(out))).catch(() => undefined);
  if (!folder?.isDirectory()) throw new CliFailure('E_OPTION', `-o ${out}: the folder ${dirname(out)} does not exist (for ${format.name} models -o names the output file)`);
  const existing = await stat(resolve(out)).catch(() => undefined);
  if (existing?.isDirectory()) throw new CliFailure('E_OPTION', `-o ${out} is a folder; for ${format.name} models -o names the output file, e.g. ${out.replace(/\/+$/, '')}/balanced.${format.argument.split('.').pop()}`);
  const input = existing && await stat(resolve(model)).catch(() => undefined);
  if (existing && input && input.ino === existing.ino && input.dev === existing.dev) throw new CliFailure('E_OPTION', `-o ${out} is the input model itself; name a new file`);
}

/**
 * The deviation check for this run, validated before anything is computed: the input shape
 * (--inputs, --input-shape, else the model's) must fit the weights, and the check must fit its
 * limits. With --samples 0 a fully known shape of a single-input model is still checked against the weights.
 */
function prepareCheck(model: string, read: { network: Network; inputShape: number[] }, f: BalanceFlags, inputs: CheckInputs | undefined): DeviationCheck | undefined {
  const shape = inputs?.shape ?? f.inputShape ?? read.inputShape;
  const where = `the input shape${inputs ? ` of --inputs ${f.inputs}` : f.inputShape ? ' given by --input-shape' : ''}`;
  const open = shape.some((d) => !(d > 0));
  const count = read.network.reduce((n, l) => n + (l.kind === 'input' ? 1 : 0), 0);
  if (f.samples === 0) {
    if (!open && count <= 1) checkInputShape(read.network, shape, `${model}: ${where}`);
    return undefined;
  }
  if (open) {
    throw new CliFailure('E_SHAPE', `${model}: the input shape [${shape.map((d) => (d > 0 ? d : '?')).join(', ')}] has open dimensions; give --input-shape (or --samples 0)`);
  }
  return new DeviationCheck(read.network, shape, inputs?.count ?? f.samples, f.seed, model, where, inputs);
}

/** The format's runtime for `model`, undefined without one; a string says why it is unavailable. */
async function runtimeOf<M>(format: ModelFormat<M>, model: M): Promise<ModelRunner | string | undefined> {
  if (!format.runtime) return undefined;
  const r = await format.runtime(model);
  return typeof r === 'function' ? r : r.unavailable;
}

interface Checked {
  check?: DeviationCheck;
  /** The runtime of the original model, when the format has one. */
  runner?: ModelRunner;
  skipped?: string;
  samples: number;
}

/** Builds the check and records the outputs of the (original) model; a missing runtime skips it, or fails with --require-check. */
async function recordOriginal<M>(format: ModelFormat<M>, model: string, read: M, original: ReturnType<ModelFormat<M>['verification']>, f: BalanceFlags, inputs: CheckInputs | undefined, progress: Progress): Promise<Checked> {
  const check = prepareCheck(model, original, f, inputs);
  const samples = inputs?.count ?? f.samples;
  if (!check) return { samples };
  const runner = await runtimeOf(format, read);
  if (typeof runner === 'string') {
    if (f.requireCheck) throw new CliFailure('E_CHECK', `${model}: the output check cannot run: ${runner}; --require-check makes this an error; nothing written`);
    return { samples, skipped: runner };
  }
  progress.phase(`running the original model on ${samples} check inputs${runner ? ` in the ${format.name} runtime` : ''}`);
  if (runner) await check.recordBeforeWith(runner);
  else check.recordBefore(original.network);
  return { check, runner, samples };
}

/** The balanced model's deviation from the recorded outputs, in the same runtime. */
async function compareBalanced<M>(format: ModelFormat<M>, c: Checked, target: M, net: Network): Promise<Deviation | string> {
  if (!c.check) return { absolute: 0, relative: 0, scale: 0 };
  if (!c.runner) return c.check.compareAfter(net);
  const after = await runtimeOf(format, target);
  if (typeof after !== 'function') return after ?? 'the runtime disappeared';
  return c.check.compareAfterWith(after);
}

const quantSettings = (f: BalanceFlags): QuantizationSettings | undefined => (f.quantize ? { bits: f.quantize === 'int4' ? 4 : 8, perChannel: f.perChannel } : undefined);
const weightCount = (net: Network) => net.reduce((n, l) => n + ('weight' in l ? l.weight.length : 0), 0);

export async function runBalance(model: string, f: BalanceFlags, progress: Progress): Promise<CliReport> {
  const format = formatFor(model) as ModelFormat<unknown>;
  if (f.foldBn && !format.foldBatchNorm) throw new CliFailure('E_OPTION', `the ${format.name} format cannot fold batch norm (--fold-bn)`);
  if (f.requireCheck && f.samples === 0) throw new CliFailure('E_OPTION', '--require-check needs the output check: --samples must not be 0');
  await checkOutputPath(format, model, f.out);
  progress.phase(`reading ${model}`);
  const read = await format.read(model);
  // The original model's check view, made once (for ONNX it also rounds float16 weights as written).
  const original = format.verification(read);
  const inputs = f.inputs ? checkInputsFor(await readInputsFile(f.inputs), f.inputShape ?? original.inputShape, `--inputs ${f.inputs}`) : undefined;
  // Without --fold-bn: read, validated and planned once (NaN weights, shapes, aliasing, graph and
  // width errors come first, with their own messages), then the check. With it, the original's
  // outputs are recorded before folding (the check compares folded + balanced with the original).
  let checked: Checked | undefined = f.foldBn ? await recordOriginal(format, model, read, original, f, inputs, progress) : undefined;
  const batchNorms = countBatchNorms(original.network);
  const target = f.foldBn ? format.foldBatchNorm!(read) : read;
  const view = f.foldBn ? format.verification(target) : original;
  progress.phase(`planning ${weightCount(view.network)} weights`);
  const prepared = prepare(view.network, {
    c: f.c, p: f.p, tolerance: f.tolerance, stopOn: f.stopOn, omega: f.omega, maxCycles: f.maxCycles, includeBiases: f.includeBiases, residual: f.residual, backend: f.backend,
    onCycle: (cycle, energy, info) => progress.cycle(cycle, energy, info),
  });
  const net = prepared.network;
  checked ??= await recordOriginal(format, model, read, original, f, inputs, progress);
  const q = quantSettings(f);
  if (q) progress.phase(`quantisation figures before balancing (int${q.bits}${q.perChannel ? ' per channel' : ''})`);
  // The output SQNR runs enorm's float64 forward pass: withheld where it would not compute the model's function.
  const sqnrCheck = view.forwardDiffers ? undefined : checked.check;
  const quantBefore: QuantSnapshot | undefined = q && quantSnapshot(net, q, sqnrCheck);
  const normsBefore = layerNorms(net, f.p);

  progress.phase(`balancing: c=${f.c} p=${f.p} backend ${f.backend}`);
  const report = await balancePrepared(prepared);
  progress.done();

  const dev = await compareBalanced(format, checked, target, net);
  if (typeof dev !== 'string' && !deviationAccepted(dev, f.maxDeviation)) {
    const how = Number.isFinite(dev.relative) ? `by ${dev.relative.toExponential(2)} relative` : `to non-finite values (deviation ${dev.relative})`;
    throw new CliFailure('E_DEVIATION', `${model}: balancing moved the outputs ${how} (over --max-deviation ${f.maxDeviation}); nothing written`);
  }
  if (typeof dev === 'string' && f.requireCheck) throw new CliFailure('E_CHECK', `${model}: the output check cannot run: ${dev}; nothing written`);
  const quantization = q && quantizationReport(net, q, quantBefore!, quantSnapshot(net, q, sqnrCheck), checked.samples, format.weightNames?.(target), view.forwardDiffers);
  const normsAfter = layerNorms(net, f.p);
  progress.phase(`writing ${f.out}`);
  const written = await format.write(target, f.out);
  progress.done();
  const skipped = checked.skipped ?? (typeof dev === 'string' ? dev : undefined);
  const measured = typeof dev === 'string' ? undefined : dev;
  return {
    model,
    format: format.name,
    output: f.out,
    written,
    options: { c: f.c, p: f.p, tolerance: f.tolerance, stopOn: f.stopOn, omega: f.omega, maxCycles: f.maxCycles, includeBiases: f.includeBiases, residual: f.residual },
    backend: report.backend,
    energyBefore: report.energyBefore,
    energyAfter: report.energyAfter,
    cycles: report.cycles,
    converged: report.converged,
    maxScaleChange: report.maxScaleChange,
    distance: Number.isFinite(report.distance) ? report.distance : null,
    omega: report.omega,
    groups: report.groups,
    units: report.units,
    barriers: report.barriers,
    ...(f.foldBn ? { foldedBatchNorms: batchNorms - countBatchNorms(view.network) } : {}),
    layers: normsBefore.map((l, i) => ({ ...l, normAfter: normsAfter[i].norm, spreadAfter: normsAfter[i].spread })),
    outputDeviation: skipped !== undefined || !measured ? { samples: checked.samples, skipped: skipped ?? '' } : {
      samples: checked.samples, inputs: f.inputs && checked.check ? f.inputs : 'random', checkedBy: checked.runner ? `${format.name} runtime` : 'float64 forward',
      absolute: measured.absolute, relative: measured.relative, maxAbsOutput: measured.scale,
    },
    ...(quantization ? { quantization } : {}),
  };
}
