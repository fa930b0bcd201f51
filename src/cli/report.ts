/** The human-readable report of `enorm balance`. */
import { clean } from '../model-io/text.js';
import { medianGain, type QuantizationReport } from './quantization.js';
import type { CliReport } from './run.js';

const g = (x: number) => (Math.abs(x) >= 1e4 || (x !== 0 && Math.abs(x) < 1e-3) ? x.toExponential(3) : x.toPrecision(5));

/** Names and paths from the model file or the command line, printable and capped. */
const safe = (s: string) => clean(s, 60);
const pText = (p: number) => (p === Infinity ? 'inf' : String(p));

/** The --json report: p = ∞ is written "inf" (JSON has no Infinity); an exact SQNR (Infinity) is null. */
export function reportJson(r: CliReport): string {
  return JSON.stringify({ ...r, options: { ...r.options, p: r.options.p === Infinity ? 'inf' : r.options.p } }, null, 2) + '\n';
}

/** Right-aligned columns after the first `left`, widths by loops (a model can have 100,000+ layers: no spread into Math.max). */
function table(header: string[], rows: string[][], left: number): string[] {
  const widths = header.map((h) => h.length);
  for (const row of rows) row.forEach((c, i) => { if (c.length > widths[i]) widths[i] = c.length; });
  return [header, ...rows].map((row) => row.map((c, i) => (i < left ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  '));
}

export function formatReport(r: CliReport): string {
  const change = ((r.energyAfter - r.energyBefore) / r.energyBefore) * 100;
  const lines = [
    `enorm balance ${clean(r.model, 200)} -> ${clean(r.output, 200)}`,
    `backend ${r.backend}; c=${r.options.c} p=${pText(r.options.p)} tolerance=${r.options.tolerance} stop-on=${r.options.stopOn} omega=${r.options.omega} max-cycles=${r.options.maxCycles}` +
      `${r.options.includeBiases ? ' include-biases' : ''} residual=${r.options.residual}`,
    `energy ${g(r.energyBefore)} -> ${g(r.energyAfter)} (${change.toFixed(2)}%) after ${r.cycles} cycle${r.cycles === 1 ? '' : 's'}, ` +
      `${r.converged ? 'converged' : 'NOT converged (raise --max-cycles or --tolerance)'}; ${r.units} units in ${r.groups} groups`,
    `last cycle: largest scale change |log d| ${r.maxScaleChange.toExponential(2)}, estimated distance to the fixed point ${r.distance === null ? 'unknown' : r.distance.toExponential(2)}, omega ${r.omega.toFixed(3)}`,
    ...(r.foldedBatchNorms !== undefined ? [`folded ${r.foldedBatchNorms} batch norm${r.foldedBatchNorms === 1 ? '' : 's'} into the layer before`] : []),
    '',
  ];
  // For p = ∞ the norm is max |w| (stats.ts).
  const header = ['layer', 'kind', 'units', `${r.options.p === Infinity ? 'max|W|' : '||W||_p'} before`, 'after', 'unit-norm spread before', 'after'];
  const rows = r.layers.map((l) => [safe(l.layer), l.kind, String(l.units), g(l.norm), g(l.normAfter), g(l.spread), g(l.spreadAfter)]);
  lines.push(...table(header, rows, 2), '');
  if (r.barriers.length) {
    lines.push('left at scale 1:');
    for (const b of r.barriers) lines.push(`  ${safe(b.layer)}: ${clean(b.reason, 200)}`);
  }
  const d = r.outputDeviation;
  lines.push('skipped' in d ? `output check skipped: ${clean(d.skipped, 300)}`
    : d.samples
      ? `largest output deviation on ${d.samples} ${d.inputs === 'random' ? 'random inputs' : `inputs from ${clean(d.inputs, 200)}`}` +
        `${d.checkedBy === 'float64 forward' ? '' : ` (${d.checkedBy})`}: ${d.absolute.toExponential(2)} ` +
        `(${d.relative.toExponential(2)} of the largest |output| ${g(d.maxAbsOutput)})`
      : 'output deviation not measured (--samples 0)');
  if (r.quantization) lines.push('', ...quantizationLines(r.quantization));
  lines.push(`wrote ${r.written.map((p) => clean(p, 200)).join(', ')}`);
  return lines.join('\n') + '\n';
}

const db = (x: number | null) => (x === null ? '-' : x === Infinity ? 'exact' : x.toFixed(1));
/** +x.x / -x.x dB; a change that rounds to zero is +0.0 (toFixed writes -0.02 as -0.0). */
const signed = (x: number) => (Number.isFinite(x) ? (x.toFixed(1) === '-0.0' ? '+0.0' : `${x >= 0 ? '+' : ''}${x.toFixed(1)}`) : '-');

/** The per-tensor SQNR table and the one-line verdict. */
export function quantizationLines(q: QuantizationReport): string[] {
  const how = `int${q.bits} ${q.perChannel ? 'per-channel' : 'per-tensor'}`;
  const rows = q.tensors.map((t) => [safe(t.name), db(t.sqnrBefore), db(t.sqnrAfter), signed(t.sqnrAfter - t.sqnrBefore)]);
  const gain = medianGain(q);
  const output = q.outputSqnrWithheld !== undefined
    ? `output SQNR not measured: enorm's forward pass does not reproduce this model (${safe(q.outputSqnrWithheld)})`
    : q.outputSqnrBefore === null || q.outputSqnrAfter === null
    ? 'output SQNR not measured (--samples 0 or the check was skipped)'
    : `output SQNR ${db(q.outputSqnrBefore)} -> ${db(q.outputSqnrAfter)} dB on ${q.outputSamples} check inputs`;
  const change = !Number.isFinite(gain) ? 'changed no finite weight SQNR'
    : signed(gain) === '+0.0' ? 'left the weight SQNR unchanged (median change +0.0 dB)'
    : `${gain > 0 ? 'raised' : 'lowered'} the weight SQNR by a median of ${signed(gain)} dB`;
  const verdict = `${how}: balancing ${change}; ${output}`;
  return [`${how} weight quantisation, SQNR in dB:`, ...table(['tensor', 'before', 'after', 'change'], rows, 1), verdict];
}
