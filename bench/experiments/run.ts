/**
 * npm run experiments -- [--quick] [--only fc-depth small-batch overhead convergence fc-depth-w500] [--results DIR]
 *
 * Runs the paper's checks on Fashion-MNIST (docs/ALGORITHM.md section 5), skipping every cell whose row is
 * already in DIR (default bench/results, bench/results/quick with --quick), so an interrupted sweep
 * resumes. Trains on webgpu when a hardware GPU is present, else on wasm (cpu for conv nets).
 * Then writes docs/RESULTS.md and its plots (--no-report to skip).
 * Runners may share a results directory, one per core: each takes the next task no other runner has
 * claimed (./queue.ts), so two of them on two cores finish a sweep in about half the time.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { SingleBar } from 'cli-progress';
import { Command, Option } from 'commander';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadFashion } from '../data/fashion-mnist.js';
import { seededSplit } from '../data/images.js';
import { mulberry32 } from '../../src/network/random.js';
import { describeAdapter, probeHardwareAdapter, useWebGPU } from '../../scripts/webgpu-node.js';
import type { Backends, Context, Task } from './context.js';
import { useFastConvFilterGradient } from './conv-filter-grad.js';
import { useFastTransposedMatMul } from './transposed-matmul.js';
import { formatEta } from './eta.js';
import { useFastTile } from './fast-tile.js';
import { convergenceTasks } from './convergence.js';
import { fcDepthTasks, fcWideTasks } from './fc-depth.js';
import { overheadTasks } from './overhead.js';
import { PROTOCOLS, type Protocol } from './protocol.js';
import { runShared } from './queue.js';
import { writeReport } from './report.js';
import { smallBatchTasks } from './small-batch.js';

// Cheapest first, so that a sweep cut short still has every experiment's quick ones.
const EXPERIMENTS = { overhead: overheadTasks, convergence: convergenceTasks, 'fc-depth': fcDepthTasks, 'small-batch': smallBatchTasks, 'fc-depth-w500': fcWideTasks } as const;
type ExperimentName = keyof typeof EXPERIMENTS;

const program = new Command('experiments')
  .option('--quick', 'the whole pipeline in a few minutes (results in bench/results/quick)')
  .addOption(new Option('--protocol <name>', 'full, quick or tiny').choices(['full', 'quick', 'tiny']))
  .addOption(new Option('--only <experiments...>', 'run only these').choices(Object.keys(EXPERIMENTS)))
  .option('--results <dir>', 'where result files are read and written')
  .option('--backends <names...>', 'backends the overhead experiment times (default: cpu, wasm and webgpu when present)')
  .option('--no-report', 'do not rewrite docs/RESULTS.md and its plots')
  .option('--report-only', 'run nothing; rewrite the report from the rows there are')
  .option('--docs <dir>', 'where the report goes (default docs for the full protocol, else <results>/report)')
  .option('--no-progress', 'no progress bar');
program.parse();
const opts = program.opts<{ quick?: boolean; protocol?: Protocol['name']; only?: ExperimentName[]; results?: string; backends?: string[]; report: boolean; reportOnly?: boolean; docs?: string; progress: boolean }>();

const protocol = PROTOCOLS[opts.protocol ?? (opts.quick ? 'quick' : 'full')];
const resultsDir = opts.results ?? (protocol.name === 'full' ? 'bench/results' : join('bench/results', protocol.name));

/** Results of one protocol only: a directory remembers the protocol its rows came from. */
function checkProtocol(): void {
  mkdirSync(resultsDir, { recursive: true });
  const file = join(resultsDir, 'protocol.json');
  const text = `${JSON.stringify(protocol, null, 1)}\n`;
  if (existsSync(file) && readFileSync(file, 'utf8') !== text) {
    throw new Error(`${resultsDir} holds results of a different protocol (${file}); use another --results directory or move them away`);
  }
  writeFileSync(file, text);
}

async function detectBackends(): Promise<Backends & { hardware: boolean }> {
  const hw = await probeHardwareAdapter();
  if (hw) return { fc: 'webgpu', conv: 'webgpu', convEval: 'webgpu', all: opts.backends ?? ['cpu', 'wasm', 'webgpu'], adapter: describeAdapter(hw), hardware: true };
  return { fc: 'wasm', conv: 'cpu', convEval: 'wasm', all: opts.backends ?? ['cpu', 'wasm', 'webgpu'], hardware: false };
}

async function report(): Promise<void> {
  const written = await writeReport(resultsDir, opts.docs ?? (protocol.name === 'full' ? 'docs' : join(resultsDir, 'report')), protocol);
  console.log(`wrote ${written.join(', ')}`);
}

async function main(): Promise<void> {
  checkProtocol();
  if (opts.reportOnly) return report();
  useFastConvFilterGradient(); // conv nets train on cpu; tfjs's filter gradient there is ~12x slower
  useFastTransposedMatMul(); // dense nets train on wasm; tfjs's products with a transposed operand there are ~10x slower
  useFastTile(); // and BN's gradient tiles to the batch: ~26% of the width-500 BN step with tfjs's Tile; bit-identical
  const backends = await detectBackends();
  let webgpuReady = false;
  const use = async (backend: string) => {
    if (backend === 'webgpu' && !webgpuReady) {
      const info = await useWebGPU({ hardware: backends.hardware });
      backends.adapter ??= describeAdapter(info);
      webgpuReady = true;
    }
    if (tf.getBackend() !== backend && !(await tf.setBackend(backend))) throw new Error(`tfjs backend ${backend} is not available`);
    await tf.ready();
  };
  const data = loadFashion();
  const split = seededSplit(data.count, mulberry32(protocol.split.seed), protocol.split);
  const ctx: Context = { protocol, data, split, resultsDir, backends, use };
  const names = opts.only ?? (Object.keys(EXPERIMENTS) as ExperimentName[]);
  const tasks: Task[] = names.flatMap((n) => EXPERIMENTS[n](ctx));
  const todo = tasks.filter((t) => !t.done());
  console.log(`protocol ${protocol.name}: ${names.join(', ')}; training on ${backends.fc} (conv nets on ${backends.conv}); results in ${resultsDir}`);
  console.log(`${tasks.length - todo.length} of ${tasks.length} runs already done`);

  const total = todo.reduce((a, t) => a + t.cost, 0);
  const bar = new SingleBar({
    format: '{bar} {percentage}% | ETA {eta_formatted} | {task}',
    etaBuffer: 200, noTTYOutput: true, notTTYSchedule: 10_000, hideCursor: true,
    formatTime: formatEta,
  });
  if (opts.progress) bar.start(Math.max(1, total), 0, { task: todo[0]?.label ?? 'nothing to do' });
  const ran = await runShared(todo, resultsDir, {
    progress: (at, label) => bar.update(at, label ? { task: label } : {}),
    // A claim names its runner by pid: after a reboot an unrelated process may have that pid, hence the hint.
    waiting: (labels) => bar.update({ task: `waiting for another runner: ${labels[0]}${labels.length > 1 ? ` (+${labels.length - 1})` : ''} (claims in ${join(resultsDir, '.claims')}; remove one whose runner is gone)` }),
  });
  bar.stop();
  console.log(`this runner ran ${ran} of the ${todo.length} runs left${ran < todo.length ? '; other runners sharing the directory ran the rest' : ''}`);
  if (opts.report) await report();
}

main().catch((e: unknown) => {
  console.error(`experiments: ${e instanceof Error ? e.message : String(e)}`);
  process.exitCode = 1;
});
