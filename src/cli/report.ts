/** The human-readable report of `enorm balance`. */
import { clean } from '../model-io/text.js';
import type { CliReport } from './main.js';

const g = (x: number) => (Math.abs(x) >= 1e4 || (x !== 0 && Math.abs(x) < 1e-3) ? x.toExponential(3) : x.toPrecision(5));

/** Names and paths from the model file or the command line, printable and capped. */
const safe = (s: string) => clean(s, 60);

export function formatReport(r: CliReport): string {
  const change = ((r.energyAfter - r.energyBefore) / r.energyBefore) * 100;
  const lines = [
    `enorm balance ${clean(r.model, 200)} -> ${clean(r.output, 200)}`,
    `backend ${r.backend}; c=${r.options.c} p=${r.options.p} tolerance=${r.options.tolerance} max-cycles=${r.options.maxCycles}` +
      `${r.options.includeBiases ? ' include-biases' : ''} residual=${r.options.residual}`,
    `energy ${g(r.energyBefore)} -> ${g(r.energyAfter)} (${change.toFixed(2)}%) after ${r.cycles} cycle${r.cycles === 1 ? '' : 's'}, ` +
      `${r.converged ? 'converged' : 'NOT converged (raise --max-cycles or --tolerance)'}; ${r.units} units in ${r.groups} groups`,
    '',
  ];
  const header = ['layer', 'kind', 'units', `||W||_p before`, 'after', 'unit-norm spread before', 'after'];
  const rows = r.layers.map((l) => [safe(l.layer), l.kind, String(l.units), g(l.norm), g(l.normAfter), g(l.spread), g(l.spreadAfter)]);
  // Column widths by loops: a model can have 100,000+ layers, too many to spread into Math.max.
  const widths = header.map((h) => h.length);
  for (const row of rows) row.forEach((c, i) => { if (c.length > widths[i]) widths[i] = c.length; });
  for (const row of [header, ...rows]) lines.push(row.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  '));
  lines.push('');
  if (r.barriers.length) {
    lines.push('left at scale 1:');
    for (const b of r.barriers) lines.push(`  ${safe(b.layer)}: ${clean(b.reason, 200)}`);
  }
  lines.push(r.outputDeviation.samples
    ? `largest output deviation on ${r.outputDeviation.samples} random inputs: ${r.outputDeviation.absolute.toExponential(2)} ` +
      `(${r.outputDeviation.relative.toExponential(2)} of the largest |output| ${g(r.outputDeviation.maxAbsOutput)})`
    : 'output deviation not measured (--samples 0)');
  lines.push(`wrote ${r.written.map((p) => clean(p, 200)).join(', ')}`);
  return lines.join('\n') + '\n';
}
