/**
 * ENorm cycle benchmark. Prints one JSON object per line with --json, a table otherwise.
 * Every figure has a same-run baseline: memcpyMs is one copy of all of the case's weights
 * (TypedArray.set), and ratio = msPerCycle / memcpyMs.
 * msPerStep is upload + cycle + download; msPerResidentStep is discardSums + cycle on resident
 * tensors (engine.tensor(i)), what an embedder that keeps its weights in engine memory pays per
 * SGD step (it writes the views in place, so nothing is copied here).
 *
 *   npm run bench -- --json [--case NAME] [--backend simd|scalar|js] [--seconds S]
 */
import { parseArgs } from 'node:util';
import type { BackendName } from '../src/engine/backend.js';
import { ENorm } from '../src/engine/enorm.js';
import { convChain, mlp } from '../src/network/builders.js';
import { isWeighted, type Network } from '../src/network/layers.js';
import { median } from './stats.js';

interface Case {
  name: string;
  build: () => Network;
}

const resnetConvWidths = [3, 64, 64, 64, 64, 128, 128, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512];
const mlpCase = (width: number): Case => ({
  name: `mlp-3072-${width}x14-10`,
  build: () => mlp({ sizes: [3072, ...Array(14).fill(width), 10], bias: false, seed: 1 }),
});
const CASES: Case[] = [
  mlpCase(500),
  { name: 'resnet18-conv-stack', build: () => convChain({ channels: resnetConvWidths, kernel: 3, bias: false, momentum: true, seed: 2 }) },
  // Scaling series: the same depth at other widths, to check that cost grows linearly with parameters.
  mlpCase(250),
  mlpCase(1000),
];

const { values } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    case: { type: 'string', multiple: true },
    backend: { type: 'string', multiple: true },
    seconds: { type: 'string', default: '1.5' },
  },
});
const budgetMs = 1000 * Number(values.seconds);
const backends = (values.backend ?? ['simd', 'scalar', 'js']) as BackendName[];
const cases = CASES.filter((c) => !values.case || values.case.includes(c.name));

/** Median wall time of fn, repeated until the time budget is spent (at least 5 runs, after 2 warm-ups). */
function time(fn: () => void): number {
  fn();
  fn();
  const samples: number[] = [];
  const start = performance.now();
  while (samples.length < 5 || performance.now() - start < budgetMs) {
    const t = performance.now();
    fn();
    samples.push(performance.now() - t);
    if (samples.length >= 2000) break;
  }
  return median(samples);
}

const rows: Record<string, unknown>[] = [];
for (const c of cases) {
  const net = c.build();
  const tensors = net.flatMap((l) => (isWeighted(l) ? [l.weight] : []));
  const params = tensors.reduce((a, t) => a + t.length, 0);
  const companions = net.reduce((a, l) => a + (isWeighted(l) && l.companions?.weight ? (l.companions.weight as Float32Array).length : 0), 0);
  const src = new Float32Array(params);
  const dst = new Float32Array(params);
  let at = 0;
  for (const t of tensors) { src.set(t, at); at += t.length; }
  for (const backend of backends) {
    const engine = await ENorm.create(net, { backend, c: 1 });
    const memcpyMs = time(() => dst.set(src));
    const msPerCycle = time(() => engine.cycle());
    const msPerStep = time(() => engine.step());
    const msPerResidentStep = time(() => {
      engine.discardSums();
      engine.cycle();
    });
    const row = {
      case: c.name,
      backend,
      params,
      companions,
      msPerCycle: +msPerCycle.toFixed(4),
      memcpyMs: +memcpyMs.toFixed(4),
      ratio: +(msPerCycle / memcpyMs).toFixed(3),
      nsPerParam: +((msPerCycle * 1e6) / params).toFixed(4),
      msPerStep: +msPerStep.toFixed(4),
      stepRatio: +(msPerStep / memcpyMs).toFixed(3),
      msPerResidentStep: +msPerResidentStep.toFixed(4),
      residentStepRatio: +(msPerResidentStep / memcpyMs).toFixed(3),
    };
    rows.push(row);
    if (values.json) console.log(JSON.stringify(row));
  }
}
if (!values.json) console.table(rows);
