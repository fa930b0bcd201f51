/**
 * ENorm cycle benchmark. Prints one JSON object per line with --json, a table otherwise.
 * Every figure has a same-run baseline: one copy of all of the case's weights (TypedArray.set),
 * timed in rounds alternating with the figure's own (paired(): ratio = the median over rounds of
 * figure / copy); memcpyMs is the median copy.
 *  - msPerCycle: the balance cycle (cycle() again and again, scales pending: it only reads).
 *  - msPerStep: upload + cycle + download (download materialises the scales).
 *  - msPerResidentStep: discardSums + cycle + materialise on resident tensors (engine.tensor(i)),
 *    what an embedder that keeps its weights in engine memory pays per SGD step (fresh sums included).
 * Convergence cases (deep-chain-*): cycles and milliseconds until the scales are within 1e-6 (and
 * 1e-5) of the minimiser's, for the plain cycle and for balance (omega 'auto'); the minimiser comes
 * from the float64 reference run to 1e-13.
 * --official: also times the official PyTorch release's step() on the same cases in this run
 * (bench/official/step.py; ENORM_OFFICIAL must name its enorm/enorm/enorm.py; $PYTHON, default python3, needs torch).
 *
 *   npm run bench -- --json [--case NAME] [--backend simd|scalar|js] [--seconds S] [--official]
 */
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { balance } from '../src/engine/balance.js';
import { balanceReference } from '../src/reference/reference.js';
import { deepChain } from './deep-chain.js';
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
  // Scaling series: the same depth at other widths, 0.1 M to 20 M weights, to check that cost grows linearly.
  mlpCase(32),
  mlpCase(250),
  mlpCase(1000),
  mlpCase(1150),
];
const CHAINS = [
  { name: 'deep-chain-16x64', width: 64 },
  { name: 'deep-chain-16x500', width: 500 },
];

const { values } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    case: { type: 'string', multiple: true },
    backend: { type: 'string', multiple: true },
    seconds: { type: 'string', default: '1.5' },
    official: { type: 'boolean', default: false },
  },
});
const budgetMs = 1000 * Number(values.seconds);
const backends = (values.backend ?? ['simd', 'scalar', 'js']) as BackendName[];
const cases = CASES.filter((c) => !values.case || values.case.includes(c.name));
const chains = CHAINS.filter((c) => !values.case || values.case.includes(c.name));

const ROUNDS = 8;

/** The times of at least 3 runs of fn (at most 500) over about ms milliseconds. */
function block(fn: () => void, ms: number): number[] {
  const samples: number[] = [];
  const start = performance.now();
  while (samples.length < 3 || (performance.now() - start < ms && samples.length < 500)) {
    const t = performance.now();
    fn();
    samples.push(performance.now() - t);
  }
  return samples;
}

/**
 * fn against the copy in the same stretch of time: ROUNDS rounds of a block of copies and then a
 * block of fn (each block warms its own caches), ratio = the median over rounds of
 * median(fn) / median(copy) in that round. The load on a shared machine drifts over seconds, and a
 * ratio of two medians taken seconds apart moved by up to 1.5x; paired rounds follow the drift.
 */
function paired(fn: () => void, copy: () => void): { ms: number; copyMs: number; ratio: number } {
  fn();
  fn();
  copy();
  const all: number[] = [];
  const copies: number[] = [];
  const ratios: number[] = [];
  const slice = budgetMs / (2 * ROUNDS);
  for (let r = 0; r < ROUNDS; r++) {
    const c = block(copy, slice);
    const f = block(fn, slice);
    copies.push(...c);
    all.push(...f);
    ratios.push(median(f) / median(c));
  }
  return { ms: median(all), copyMs: median(copies), ratio: median(ratios) };
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
    const copy = () => dst.set(src);
    const cycle = paired(() => engine.cycle(), copy);
    const step = paired(() => engine.step(), copy);
    const resident = paired(() => {
      engine.discardSums();
      engine.cycle();
      engine.materialise();
    }, copy);
    engine.dispose();
    const memcpyMs = median([cycle.copyMs, step.copyMs, resident.copyMs]);
    const row = {
      case: c.name,
      backend,
      params,
      companions,
      msPerCycle: +cycle.ms.toFixed(4),
      memcpyMs: +memcpyMs.toFixed(4),
      ratio: +cycle.ratio.toFixed(3),
      nsPerParam: +((cycle.ms * 1e6) / params).toFixed(4),
      msPerStep: +step.ms.toFixed(4),
      stepRatio: +step.ratio.toFixed(3),
      msPerResidentStep: +resident.ms.toFixed(4),
      residentStepRatio: +resident.ratio.toFixed(3),
    };
    rows.push(row);
    if (values.json) console.log(JSON.stringify(row));
  }
}

/** Scale distance max_i |log D_i - log D*_i| of an engine to the reference minimiser. */
function distanceTo(engine: ENorm, best: Float64Array[]): number {
  let m = 0;
  engine.scales().forEach((g, i) => g.scales.forEach((x, u) => { m = Math.max(m, Math.abs(Math.log(x / best[i][u]))); }));
  return m;
}

for (const chain of chains) {
  const make = () => deepChain({ depth: 16, width: chain.width, input: chain.width, spread: 1, seed: 1 });
  const best = balanceReference(make(), { tolerance: 1e-13, maxCycles: 20000 }).scales;
  for (const backend of backends) {
    // Cycles to each target: the plain cycle, and balance's own sequence of omegas (its onCycle).
    const targets = [1e-5, 1e-6];
    const plainAt: Record<string, number> = {};
    const engine = await ENorm.create(make(), { backend });
    for (let k = 1; k <= 3000 && Object.keys(plainAt).length < targets.length; k++) {
      engine.cycle();
      const d = distanceTo(engine, best);
      for (const t of targets) if (d <= t && !(t in plainAt)) plainAt[t] = k;
    }
    engine.dispose();
    const omegas: number[] = [];
    const stopped = await balance(make(), { backend, tolerance: 1e-6, onCycle: (_, __, info) => omegas.push(info.omega) });
    const balanceAt: Record<string, number> = {};
    const probe = await ENorm.create(make(), { backend });
    omegas.forEach((w, k) => {
      probe.cycle(w);
      const d = distanceTo(probe, best);
      for (const t of targets) if (d <= t && !(t in balanceAt)) balanceAt[t] = k + 1;
    });
    const stoppedDistance = distanceTo(probe, best);
    probe.dispose();
    // Wall time of that many cycles (and one materialising pass), each as the user runs them.
    const timed = async (cycles: number, omega: number[] | null) => {
      const e = await ENorm.create(make(), { backend });
      const t = performance.now();
      for (let k = 0; k < cycles; k++) e.cycle(omega ? omega[k] : 1);
      e.materialise();
      const ms = performance.now() - t;
      e.dispose();
      return ms;
    };
    const row = {
      case: chain.name,
      backend,
      target: 1e-6,
      plainCycles: plainAt[1e-6] ?? null,
      plainMs: plainAt[1e-6] ? +(await timed(plainAt[1e-6], null)).toFixed(2) : null,
      balanceCycles: balanceAt[1e-6] ?? null,
      balanceMs: balanceAt[1e-6] ? +(await timed(balanceAt[1e-6], omegas)).toFixed(2) : null,
      plainCycles1e5: plainAt[1e-5] ?? null,
      balanceCycles1e5: balanceAt[1e-5] ?? null,
      cycleRatio1e5: plainAt[1e-5] && balanceAt[1e-5] ? +(balanceAt[1e-5] / plainAt[1e-5]).toFixed(3) : null,
      balanceStoppedAt: stopped.cycles,
      balanceConverged: stopped.converged,
      balanceOmega: +stopped.omega.toFixed(3),
      balanceDistanceEstimate: stopped.distance,
      balanceTrueDistance: stoppedDistance,
    };
    rows.push(row);
    if (values.json) console.log(JSON.stringify(row));
  }
}

if (values.official) {
  // The official release's step() in this run, beside our msPerResidentStep (both pay for fresh norms).
  const out = execFileSync(process.env.PYTHON ?? 'python3', ['bench/official/step.py', '--seconds', String(values.seconds), ...cases.flatMap((c) => ['--case', c.name])], { encoding: 'utf8' });
  for (const line of out.trim().split('\n')) {
    const theirs = JSON.parse(line) as { case: string; msPerStep: number; memcpyMs: number };
    const ours = rows.find((r) => r.case === theirs.case && r.backend === 'simd') as { msPerResidentStep: number } | undefined;
    const row = { ...theirs, oursSimdMsPerResidentStep: ours?.msPerResidentStep ?? null, speedup: ours ? +(theirs.msPerStep / ours.msPerResidentStep).toFixed(3) : null };
    rows.push(row);
    if (values.json) console.log(JSON.stringify(row));
  }
}
if (!values.json) console.table(rows);
