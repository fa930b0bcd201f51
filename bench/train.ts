/**
 * Training-step benchmark for enorm/tfjs. One JSON line per (model, backend, method, cycle) with --json:
 * msPerStep for 'sgd' (the baseline: momentum SGD), 'sgd+enorm' (one ENorm cycle after the step)
 * and 'sgd+bn' (BatchNormalization after every hidden layer instead), and overhead = ms / baseline - 1.
 * The methods of a case are timed in interleaved rounds, one step of each per round (--steps rounds
 * after 3 warm-up rounds), and overhead is the median of the per-round ratios: load that drifts
 * during the run weighs on the baseline and the figure alike. Rows carry steps and order.
 * On webgpu the step is timed with the cycle three ways: 'wgsl' (enorm's kernels on the GPU, the
 * default), 'readback' (weights read back, Wasm kernels) and 'tf-ops' (the same cycle in tf ops,
 * bench/tfops-cycle.ts); and the GPU cycle alone, wgsl against tf-ops ('enorm-cycle-only').
 *
 * 'matmuls-only' rows time the matrix products of one step of the dense chain alone (forward, and
 * both gradients), with stepOverMatMuls = sgd step / products: how far the step is from matmul-bound.
 * On wasm, BatchMatMul with a transposed operand is replaced (bench/experiments/transposed-matmul.ts)
 * unless --tfjs-matmul; every row says which ran (`matmul`). Tile is replaced too
 * (bench/experiments/fast-tile.ts, bit-identical) unless --tfjs-tile (`tile`).
 *
 *   npm run bench:train -- --json [--backend cpu|wasm|webgpu ...] [--steps N] [--part steps|cycles ...] [--tfjs-matmul] [--tfjs-tile]
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { parseArgs } from 'node:util';
import { describeAdapter, useWebGPU } from '../scripts/webgpu-node.js';
import { enormStep } from '../src/tfjs/index.js';
import { accumulatorsOf } from '../src/tfjs/model.js';
import { interleavedMs, maxRelDiff, medianMs } from './stats.js';
import { tfOpsCycle, type TfOpsCycle } from './tfops-cycle.js';
import { useFastTransposedMatMul } from './experiments/transposed-matmul.js';
import { useFastTile } from './experiments/fast-tile.js';
import { denseKernels } from './experiments/official-order.js';

const { values } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    backend: { type: 'string', multiple: true },
    steps: { type: 'string', default: '20' },
    part: { type: 'string', multiple: true },
    'tfjs-matmul': { type: 'boolean', default: false },
    'tfjs-tile': { type: 'boolean', default: false },
  },
});
const steps = Number(values.steps);
const backends = values.backend ?? ['cpu', 'wasm', 'webgpu'];
/** 'steps': SGD steps with and without ENorm or BN; 'cycles': the GPU cycle alone on webgpu, wgsl against tf-ops. */
const parts = new Set(values.part ?? ['steps', 'cycles']);

type Method = 'sgd' | 'sgd+enorm' | 'sgd+bn';
/** Where the ENorm cycle runs: the package's choice on the backend, or a comparison variant. */
type Cycle = 'wasm' | 'wgsl' | 'readback' | 'tf-ops';
interface Case { name: string; batch: number; input: number[]; build: (bn: boolean) => tf.LayersModel; conv: boolean }

const CASES: Case[] = [
  {
    name: 'mlp-784-500x6-10', batch: 256, input: [784], conv: false,
    build: (bn) => {
      const layers: tf.layers.Layer[] = [];
      for (let i = 0; i < 6; i++) {
        layers.push(tf.layers.dense({ units: 500, inputShape: i === 0 ? [784] : undefined, useBias: false, kernelInitializer: tf.initializers.heNormal({ seed: i }) }));
        if (bn) layers.push(tf.layers.batchNormalization());
        layers.push(tf.layers.reLU());
      }
      layers.push(tf.layers.dense({ units: 10, useBias: false, kernelInitializer: tf.initializers.heNormal({ seed: 6 }), activation: 'softmax' }));
      return tf.sequential({ layers });
    },
  },
  {
    name: 'convnet-28x28-16-32-fc64', batch: 32, input: [28, 28, 1], conv: true,
    build: (bn) => {
      const layers: tf.layers.Layer[] = [];
      [16, 32].forEach((filters, i) => {
        layers.push(tf.layers.conv2d({ filters, kernelSize: 3, padding: 'same', inputShape: i === 0 ? [28, 28, 1] : undefined, kernelInitializer: tf.initializers.heNormal({ seed: 10 + i }) }));
        if (bn) layers.push(tf.layers.batchNormalization());
        layers.push(tf.layers.reLU(), tf.layers.maxPooling2d({ poolSize: 2 }));
      });
      layers.push(tf.layers.flatten(), tf.layers.dense({ units: 64, kernelInitializer: tf.initializers.heNormal({ seed: 12 }) }));
      if (bn) layers.push(tf.layers.batchNormalization());
      layers.push(tf.layers.reLU(), tf.layers.dense({ units: 10, kernelInitializer: tf.initializers.heNormal({ seed: 13 }), activation: 'softmax' }));
      return tf.sequential({ layers });
    },
  },
];

/** The case's model compiled for momentum SGD, one step taken (creating the accumulators), and its seeded batch. */
async function stepped(c: Case, bn: boolean) {
  const model = c.build(bn);
  const optimizer = tf.train.momentum(0.01, 0.9);
  model.compile({ optimizer, loss: 'categoricalCrossentropy' });
  const x = tf.randomUniform([c.batch, ...c.input], 0, 1, 'float32', 1);
  const y = tf.oneHot(tf.randomUniform([c.batch], 0, 10, 'int32', 2), 10);
  await model.trainOnBatch(x, y);
  return { model, optimizer, x, y };
}

/** A step of the method, ready to time, and what frees it. */
interface Timed { step: () => Promise<void>; dispose: () => void }

async function stepOf(c: Case, method: Method, cycle?: Cycle): Promise<Timed> {
  const { model, optimizer, x, y } = await stepped(c, method === 'sgd+bn');
  const tfOps = cycle === 'tf-ops' ? await tfOpsCycle(model, optimizer, 1.2) : null;
  const cycleOn = cycle === 'readback' ? 'wasm' : undefined;
  // trainOnBatch reads the loss back, so GPU work a step queued (tf-ops) is paid within the next step.
  const step = async () => {
    await model.trainOnBatch(x, y);
    if (method !== 'sgd+enorm') return;
    if (tfOps) tfOps.run();
    else await enormStep(model, { optimizer, c: 1.2, cycleOn });
  };
  return { step, dispose: () => { tf.dispose([x, y]); model.dispose(); } };
}

/** A model after one momentum step, and a way to put its weights and momentum back to that state. */
async function trainedOnce(c: Case) {
  const { model, optimizer, x, y } = await stepped(c, false);
  tf.dispose([x, y]);
  const variables = [...model.weights.map((w) => w.read() as tf.Variable), ...(await accumulatorsOf(optimizer)).values()];
  const saved = variables.map((v) => v.clone());
  const restore = () => variables.forEach((v, i) => v.assign(saved[i]));
  const dispose = () => { tf.dispose(saved); model.dispose(); };
  return { model, optimizer, restore, dispose };
}

/** One cycle, synchronised: the package's (wgsl on webgpu), readback or tf-ops. */
async function cycleOnce(model: tf.LayersModel, optimizer: tf.Optimizer, cycle: Cycle, tfOps: TfOpsCycle | null): Promise<void> {
  if (cycle !== 'tf-ops') {
    await enormStep(model, { optimizer, c: 1.2, cycleOn: cycle === 'readback' ? 'wasm' : undefined });
    return;
  }
  tfOps!.run();
  const probe = tf.sum(model.weights[0].read());
  await probe.data(); // waits for the queued cycle; reads 4 bytes
  probe.dispose();
}

/** Median ms of the cycle alone, and its max relative weight difference from the package's cycle after one cycle. */
async function cycleAlone(c: Case, cycle: Cycle): Promise<{ ms: number; maxRelDiff: number }> {
  const { model, optimizer, restore, dispose } = await trainedOnce(c);
  const tfOps = cycle === 'tf-ops' ? await tfOpsCycle(model, optimizer, 1.2) : null;
  const weights = () => Promise.all(model.weights.map((w) => w.read().data()));
  await cycleOnce(model, optimizer, tf.getBackend() === 'webgpu' ? 'wgsl' : 'wasm', null);
  const reference = await weights();
  restore();
  await cycleOnce(model, optimizer, cycle, tfOps);
  const diff = maxRelDiff(await weights(), reference);
  const ms = await medianMs(() => cycleOnce(model, optimizer, cycle, tfOps), steps, 0);
  dispose();
  return { ms, maxRelDiff: diff };
}

const rows: Record<string, unknown>[] = [];
const emit = (row: Record<string, unknown>) => {
  rows.push(row);
  if (values.json) console.log(JSON.stringify(row));
};

/**
 * The matrix products one SGD step of a dense chain computes, alone, with the registered kernels:
 * per layer X W (forward), X^T dY (its weight gradient) and, but for the first, dY W^T.
 */
function matMulsOf(c: Case): Timed {
  const model = c.build(false);
  const shapes = denseKernels(model).map((v) => v.shape as [number, number]); // [in, out] per layer
  model.dispose();
  const operands = shapes.map(([n, m], l) => ({
    x: tf.randomUniform([c.batch, n], -1, 1, 'float32', 10 + l),
    w: tf.randomUniform([n, m], -1, 1, 'float32', 20 + l),
    dy: tf.randomUniform([c.batch, m], -1, 1, 'float32', 30 + l),
  }));
  const step = async () => {
    const out = tf.tidy(() => operands.flatMap(({ x, w, dy }, l) => [tf.matMul(x, w), tf.matMul(x, dy, true, false), ...(l > 0 ? [tf.matMul(dy, w, false, true)] : [])]));
    await Promise.all(out.map((t) => t.data()));
    tf.dispose(out);
  };
  return { step, dispose: () => tf.dispose(operands.flatMap((o) => [o.x, o.w, o.dy])) };
}

/**
 * Every method's step (and, for dense chains, the products alone) timed in interleaved rounds
 * (stats.ts interleavedMs: 3 warm-up rounds compile kernels and build the ENorm plan), so the
 * machine's drifting load weighs on all of them alike; overhead and stepOverMatMuls are medians of
 * per-round ratios to the sgd step.
 */
async function timeSteps(c: Case, backend: string): Promise<void> {
  const variants: [Method, Cycle?][] = backend === 'webgpu'
    ? [['sgd'], ['sgd+enorm', 'wgsl'], ['sgd+enorm', 'readback'], ['sgd+enorm', 'tf-ops'], ['sgd+bn']]
    : [['sgd'], ['sgd+enorm', 'wasm'], ['sgd+bn']];
  const keyOf = (method: Method, cycle?: Cycle) => (cycle ? `${method}:${cycle}` : method);
  const timed: Record<string, Timed> = {};
  for (const [method, cycle] of variants) timed[keyOf(method, cycle)] = await stepOf(c, method, cycle);
  if (!c.conv) timed['matmuls-only'] = matMulsOf(c);
  const r = await interleavedMs(Object.fromEntries(Object.entries(timed).map(([k, t]) => [k, t.step])), 'sgd', steps, 3);
  Object.values(timed).forEach((t) => t.dispose());
  const base = r.sgd.ms;
  // The replacements are wasm kernels: on cpu and webgpu tfjs's own ran.
  const kernels = backend === 'wasm' ? { matmul, tile } : { matmul: 'tfjs', tile: 'tfjs' };
  const common = { case: c.name, backend, batch: c.batch, ...kernels, steps, order: 'interleaved', baselineMs: +base.toFixed(3) };
  if (!c.conv) {
    const m = r['matmuls-only'];
    emit({ ...common, method: 'matmuls-only', msPerStep: +m.ms.toFixed(3), stepOverMatMuls: +(1 / m.ratio).toFixed(3) });
  }
  for (const [method, cycle] of variants) {
    const v = r[keyOf(method, cycle)];
    emit({ ...common, method, ...(cycle ? { cycle } : {}), msPerStep: +v.ms.toFixed(3), overhead: +(v.ratio - 1).toFixed(4) });
  }
}

/**
 * The GPU cycle alone (synchronised), WGSL against tf ops. (Readback is left out: between cycles
 * alone the values stay cached on the host, so it would read nothing; the step rows time it.)
 */
async function timeCycles(c: Case, backend: string): Promise<void> {
  const wgsl = await cycleAlone(c, 'wgsl');
  for (const cycle of ['wgsl', 'tf-ops'] as Cycle[]) {
    const r = cycle === 'wgsl' ? wgsl : await cycleAlone(c, cycle);
    emit({ case: c.name, backend, method: 'enorm-cycle-only', cycle, msPerCycle: +r.ms.toFixed(3), wgslMs: +wgsl.ms.toFixed(3), ratioToWgsl: +(r.ms / wgsl.ms).toFixed(3), maxRelDiffFromWgsl: r.maxRelDiff });
  }
}

// On wasm, BatchMatMul with a transposed operand (every product of backpropagation) is tfjs's slow
// path unless replaced (bench/experiments/transposed-matmul.ts); --tfjs-matmul times tfjs's own.
const matmul = values['tfjs-matmul'] ? 'tfjs' : 'transposed-copy';
if (!values['tfjs-matmul']) useFastTransposedMatMul();
// Likewise its Tile (BatchNormalization's gradient tiles to the batch): bench/experiments/fast-tile.ts
// unless --tfjs-tile; bit-identical results, so only the time changes.
const tile = values['tfjs-tile'] ? 'tfjs' : 'row-copy';
if (!values['tfjs-tile']) useFastTile();

for (const backend of backends) {
  if (backend === 'webgpu') {
    const info = await useWebGPU();
    emit({ backend, adapter: describeAdapter(info) });
  } else {
    await tf.setBackend(backend);
  }
  await tf.ready();
  for (const c of CASES) {
    if (c.conv && backend === 'wasm') {
      // tfjs-backend-wasm 4.22 has no convolution gradients (Conv2DBackpropFilter): nothing to time.
      emit({ case: c.name, backend, method: 'sgd', skipped: 'tfjs-backend-wasm has no Conv2DBackpropFilter kernel' });
      continue;
    }
    if (parts.has('steps')) await timeSteps(c, backend);
    if (backend === 'webgpu' && parts.has('cycles')) await timeCycles(c, backend);
  }
}
if (!values.json) console.table(rows);
