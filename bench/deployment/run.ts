/**
 * The deployment figures (issue 12): balancing before weight quantisation, measured.
 *
 *   npx tsx bench/deployment/conv-model.ts      # once: trains and exports models/conv-bn-dw
 *   npx tsx bench/deployment/run.ts             # the grid below -> docs/results/deployment.json,
 *                                               # deployment-sqnr.svg and the RESULTS.md section
 *   npx tsx bench/deployment/run.ts --report    # the plot and the section again from deployment.json
 *
 * For every model x p in {2, inf} x {int8, int4} x {per tensor, per channel} it runs the CLI
 *   enorm balance MODEL -o OUT --json --inputs DIGITS.npy --p P --quantize intB [--per-channel] [--fold-bn]
 * on 64 MNIST digits and keeps the report's energy, cycles, largest scale change, per-tensor and
 * output SQNR. It then scores the float model and the weight-quantised model before and after
 * balancing on 1,000 held-out MNIST digits with enorm's float64 forward pass (the quantised copy is
 * the one the CLI's report measures: quantizedNetwork, i.e. src/quantize/quantize.ts on every kernel).
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadDigits, shuffled } from '../data/mnist.js';
import { PIXELS } from '../data/images.js';
import { encodeNpy } from '../../src/cli/npy.js';
import { medianGain, quantizedNetwork, type QuantizationReport } from '../../src/cli/quantization.js';
import { formatFor } from '../../src/model-io/formats.js';
import type { ModelFormat } from '../../src/model-io/format.js';
import { forward } from '../../src/network/forward.js';
import type { Network } from '../../src/network/layers.js';
import { mulberry32 } from '../../src/network/random.js';
import { groupedBars } from './bars.js';
import { heldOut } from './split.js';

const WORK = 'out/deployment';
const RESULTS = 'docs/results';
const CHECK_DIGITS = 64;
/**
 * `run.ts mlp`: only the models whose id contains 'mlp' (a quick look; the files then hold only those rows).
 * `run.ts --report`: no measuring; the plot and the RESULTS.md section again from docs/results/deployment.json.
 */
const ONLY = process.argv[2];

interface ModelCase { id: string; path: string; inputShape: number[]; foldBn: boolean }

const CONV = 'bench/deployment/models/conv-bn-dw';
const MODELS: ModelCase[] = [
  { id: 'mnist-mlp (tfjs)', path: 'models/mnist-mlp/model.json', inputShape: [PIXELS], foldBn: false },
  { id: 'conv-bn-dw (tfjs)', path: `${CONV}/model.json`, inputShape: [28, 28, 1], foldBn: false },
  { id: 'conv-bn-dw (onnx)', path: `${CONV}/model.onnx`, inputShape: [1, 28, 28], foldBn: false },
  { id: 'conv-bn-dw (onnx, --fold-bn)', path: `${CONV}/model.onnx`, inputShape: [1, 28, 28], foldBn: true },
];
const PS = ['2', 'inf'] as const;
const BITS = [8, 4] as const;
const GRANULARITY = [false, true] as const;

export interface DeploymentRow {
  model: string; p: string; bits: number; perChannel: boolean; foldBn: boolean;
  energyBefore: number; energyAfter: number; cycles: number; converged: boolean; maxScaleChange: number | null;
  outputDeviation: number; tensors: QuantizationReport['tensors']; medianTensorGain: number;
  outputSqnrBefore: number | null; outputSqnrAfter: number | null;
  accuracyFloat: number; accuracyQuantBefore: number; accuracyQuantAfter: number;
}

/** The check digits (scripts/mnist-inputs.ts's seeded pick) as one .npy per per-example shape. */
async function writeCheckInputs(digits: ReturnType<typeof loadDigits>): Promise<Map<string, string>> {
  const rows = shuffled(digits.count, mulberry32(12)).slice(0, CHECK_DIGITS);
  const x = new Float32Array(rows.length * PIXELS);
  rows.forEach((r, k) => x.set(digits.pixels.subarray(r * PIXELS, (r + 1) * PIXELS), k * PIXELS));
  const files = new Map<string, string>();
  for (const m of MODELS) {
    const key = m.inputShape.join('x');
    const file = join(WORK, `digits-${key}.npy`);
    await writeFile(file, encodeNpy(x, [rows.length, ...m.inputShape]));
    files.set(key, file);
  }
  return files;
}

/** One CLI run; its --json report. */
async function balanceCli(m: ModelCase, p: string, bits: number, perChannel: boolean, inputs: string, out: string): Promise<Record<string, unknown>> {
  const args = ['tsx', 'src/cli/bin.ts', 'balance', m.path, '-o', out, '--json', '--quiet', '--inputs', inputs, '--p', p, '--quantize', `int${bits}`];
  if (perChannel) args.push('--per-channel');
  if (m.foldBn) args.push('--fold-bn');
  const { stdout } = await promisify(execFile)('npx', args, { maxBuffer: 64 * 2 ** 20 });
  return JSON.parse(stdout) as Record<string, unknown>;
}

/** The network a format reads from `path` (folded first when asked): what the CLI balanced or wrote. */
async function networkOf(path: string, fold: boolean): Promise<Network> {
  const format = formatFor(path) as ModelFormat;
  const model = await format.read(path);
  return format.verification(fold ? format.foldBatchNorm!(model) : model).network;
}

/** Share of `rows` whose largest output is the label. */
function accuracy(net: Network, x: Float32Array, labels: Int32Array, inputShape: number[]): number {
  const [out] = forward(net, [x], { batch: labels.length, inputShapes: [inputShape] });
  const classes = out.length / labels.length;
  let right = 0;
  labels.forEach((label, b) => {
    let best = 0;
    for (let j = 1; j < classes; j++) if (out[b * classes + j] > out[b * classes + best]) best = j;
    if (best === label) right++;
  });
  return right / labels.length;
}

function testSet(digits: ReturnType<typeof loadDigits>): { x: Float32Array; labels: Int32Array } {
  const rows = heldOut(digits.count);
  const x = new Float32Array(rows.length * PIXELS);
  rows.forEach((r, k) => x.set(digits.pixels.subarray(r * PIXELS, (r + 1) * PIXELS), k * PIXELS));
  return { x, labels: Int32Array.from(rows, (r) => digits.labels[r]) };
}

async function measure(): Promise<DeploymentRow[]> {
  await mkdir(WORK, { recursive: true });
  const digits = loadDigits();
  const inputs = await writeCheckInputs(digits);
  const test = testSet(digits);
  const rows: DeploymentRow[] = [];
  for (const [mi, m] of MODELS.entries()) {
    if (ONLY && !m.id.includes(ONLY)) continue;
    const before = await networkOf(m.path, m.foldBn);
    const accuracyFloat = accuracy(before, test.x, test.labels, m.inputShape);
    for (const p of PS) for (const bits of BITS) for (const perChannel of GRANULARITY) {
      const out = join(WORK, `m${mi}-p${p}-int${bits}${perChannel ? '-pc' : ''}${m.path.endsWith('.onnx') ? '.onnx' : ''}`);
      const r = await balanceCli(m, p, bits, perChannel, inputs.get(m.inputShape.join('x'))!, out);
      const q = r.quantization as QuantizationReport;
      const after = await networkOf(m.path.endsWith('.onnx') ? out : join(out, 'model.json'), false);
      const settings = { bits, perChannel } as const;
      const row: DeploymentRow = {
        model: m.id, p, bits, perChannel, foldBn: m.foldBn,
        energyBefore: r.energyBefore as number, energyAfter: r.energyAfter as number, cycles: r.cycles as number,
        converged: r.converged as boolean, maxScaleChange: (r.maxScaleChange as number | undefined) ?? null,
        outputDeviation: (r.outputDeviation as { relative: number }).relative,
        tensors: q.tensors, medianTensorGain: medianGain(q),
        outputSqnrBefore: q.outputSqnrBefore, outputSqnrAfter: q.outputSqnrAfter,
        accuracyFloat,
        accuracyQuantBefore: accuracy(quantizedNetwork(before, settings), test.x, test.labels, m.inputShape),
        accuracyQuantAfter: accuracy(quantizedNetwork(after, settings), test.x, test.labels, m.inputShape),
      };
      console.error(`${m.id} p=${p} int${bits} ${perChannel ? 'per-channel' : 'per-tensor'}: output SQNR ${row.outputSqnrBefore?.toFixed(2)} -> ${row.outputSqnrAfter?.toFixed(2)} dB, accuracy ${row.accuracyQuantBefore} -> ${row.accuracyQuantAfter}`);
      rows.push(row);
    }
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------
// Report

const f = (x: number | null, d = 2) => (x === null || !Number.isFinite(x) ? '–' : x.toFixed(d));
const pct = (x: number) => (100 * x).toFixed(1);
const signed = (x: number) => (x >= 0 ? `+${x.toFixed(2)}` : x.toFixed(2));
const gran = (perChannel: boolean) => (perChannel ? 'per channel' : 'per tensor');

function modelTable(rows: DeploymentRow[]): string[] {
  const out = [
    `Float accuracy: ${pct(rows[0].accuracyFloat)} % on ${heldOut(10000).length} held-out digits.`, '',
    '| p | bits | scales | energy before → after | cycles | weight SQNR, median change (dB) | output SQNR before → after (dB) | quantised accuracy before → after (%) |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    out.push(`| ${r.p === 'inf' ? '∞' : r.p} | int${r.bits} | ${gran(r.perChannel)} | ${r.energyBefore.toPrecision(4)} → ${r.energyAfter.toPrecision(4)} | ${r.cycles} | ${signed(r.medianTensorGain)} | ${f(r.outputSqnrBefore)} → ${f(r.outputSqnrAfter)} | ${pct(r.accuracyQuantBefore)} → ${pct(r.accuracyQuantAfter)} |`);
  }
  return out;
}

/** The measured counts the notes rely on, recomputed on every run. */
function summary(rows: DeploymentRow[]): string[] {
  const change = (r: DeploymentRow) => (r.outputSqnrAfter ?? NaN) - (r.outputSqnrBefore ?? NaN);
  const changes = rows.map(change).filter(Number.isFinite);
  const int8 = rows.filter((r) => r.bits === 8).map(change).filter(Number.isFinite);
  const acc = rows.map((r) => Math.abs(r.accuracyQuantAfter - r.accuracyQuantBefore));
  const best = rows.reduce((a, r) => (change(r) > change(a) ? r : a));
  return [
    `Measured: balancing raises the output SQNR in ${changes.filter((x) => x > 0).length} of ${changes.length} cells and lowers it in ${changes.filter((x) => x < 0).length}; the change ranges from ${signed(Math.min(...changes))} to ${signed(Math.max(...changes))} dB (largest: ${best.model}, p = ${best.p === 'inf' ? '∞' : best.p}, int${best.bits} ${gran(best.perChannel)}), at int8 from ${signed(Math.min(...int8))} to ${signed(Math.max(...int8))} dB. Weight-quantised accuracy changes by at most ${(100 * Math.max(...acc)).toFixed(1)} points. Largest relative output deviation of a balanced model: ${Math.max(...rows.map((r) => r.outputDeviation)).toExponential(1)}.`,
  ];
}

/** The RESULTS.md section: tables per model, the plot, and what the numbers say. */
function section(rows: DeploymentRow[], notes: string[]): string {
  const models = [...new Set(rows.map((r) => r.model))];
  const out = [
    '## Deployment: balancing before quantisation (issue 12)', '',
    'Regenerate (the conv net is committed; retraining it is needed only to change it):', '',
    '```sh',
    'npx tsx bench/deployment/conv-model.ts   # trains bench/deployment/models/conv-bn-dw (tfjs + ONNX)',
    'npx tsx bench/deployment/run.ts          # -> docs/results/deployment.json, deployment-sqnr.svg, this section',
    'npx tsx bench/deployment/run.ts --report # only the plot and this section, from deployment.json',
    '```', '',
    ...notes, '',
    ...summary(rows), '',
  ];
  for (const m of models) out.push(`### ${m}`, '', ...modelTable(rows.filter((r) => r.model === m)), '');
  out.push('![output SQNR before and after balancing](results/deployment-sqnr.svg)', '');
  return out.join('\n');
}

async function writeSection(text: string): Promise<void> {
  const file = 'docs/RESULTS.md';
  const old = await readFile(file, 'utf8');
  const at = old.indexOf('\n## Deployment: balancing before quantisation');
  await writeFile(file, `${(at < 0 ? old : old.slice(0, at + 1)).trimEnd()}\n\n${text}`);
}

async function main(): Promise<void> {
  const json = join(RESULTS, 'deployment.json');
  const rows = ONLY === '--report'
    ? (await readFile(json, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as DeploymentRow)
    : await measure();
  if (ONLY !== '--report') await writeFile(json, `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`);
  const bars = rows.flatMap((r) => {
    const cell = `p=${r.p === 'inf' ? '∞' : r.p} int${r.bits} ${r.perChannel ? 'per-channel' : 'per-tensor'}`;
    return [
      { group: r.model, cell, series: 'before', y: r.outputSqnrBefore ?? NaN },
      { group: r.model, cell, series: 'after', y: r.outputSqnrAfter ?? NaN },
    ];
  });
  await writeFile(join(RESULTS, 'deployment-sqnr.svg'), await groupedBars(bars, { title: 'Output SQNR of the weight-quantised model, before and after balancing', y: 'output SQNR (dB)' }));
  const notes = await readFile('bench/deployment/notes.md', 'utf8').then((t) => t.trim().split('\n'), () => []);
  await writeSection(section(rows, notes));
  console.error(`wrote ${ONLY === '--report' ? '' : `${json}, `}${RESULTS}/deployment-sqnr.svg and the section of docs/RESULTS.md`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
