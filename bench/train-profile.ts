/**
 * Where a training step's time goes: tf.profile of one trainOnBatch of the experiments' fully
 * connected net (bench/experiments/models.ts) on tfjs-backend-wasm, kernel by kernel, after a few
 * warm-up steps, with the median step time. One JSON line per kernel (ms summed over its calls,
 * calls, share of the step) and a last line for the step, with --json; a table otherwise.
 *
 *   npx tsx bench/train-profile.ts [--depth 14] [--width 500] [--norm none|bn] [--steps 10] [--tfjs-matmul] [--tfjs-tile] [--json]
 *
 * The kernel replacements the experiments use are installed unless --tfjs-matmul / --tfjs-tile.
 * Nested kernels (fusedMatMul__op inside _FusedMatMul) are listed as tfjs reports them, so shares
 * can add up to more than 1.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { parseArgs } from 'node:util';
import { useFastTile } from './experiments/fast-tile.js';
import { fcNet } from './experiments/models.js';
import { useFastTransposedMatMul } from './experiments/transposed-matmul.js';
import { medianMs } from './stats.js';

const { values } = parseArgs({
  options: {
    depth: { type: 'string', default: '14' },
    width: { type: 'string', default: '500' },
    norm: { type: 'string', default: 'none' },
    steps: { type: 'string', default: '10' },
    'tfjs-matmul': { type: 'boolean', default: false },
    'tfjs-tile': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});
if (values.norm !== 'none' && values.norm !== 'bn') throw new Error(`--norm is none or bn, not ${values.norm}`);
if (!values['tfjs-matmul']) useFastTransposedMatMul();
if (!values['tfjs-tile']) useFastTile();
await tf.setBackend('wasm');
await tf.ready();

const depth = Number(values.depth);
const width = Number(values.width);
const model = fcNet({ depth, width, norm: values.norm, weightDecay: 1e-3, seed: 1 });
model.compile({ optimizer: tf.train.sgd(0.01), loss: 'categoricalCrossentropy' });
const x = tf.randomUniform([256, 784], 0, 1, 'float32', 1);
const y = tf.oneHot(tf.randomUniform([256], 0, 10, 'int32', 2), 10);
const step = async () => { await model.trainOnBatch(x, y); };
const stepMs = await medianMs(step, Number(values.steps), 3);
const profile = await tf.profile(step);
const byKernel = new Map<string, { ms: number; calls: number }>();
for (const k of profile.kernels) {
  const e = byKernel.get(k.name) ?? { ms: 0, calls: 0 };
  e.ms += k.kernelTimeMs as number;
  e.calls++;
  byKernel.set(k.name, e);
}
const setup = { depth, width, norm: values.norm, batch: 256, matmul: values['tfjs-matmul'] ? 'tfjs' : 'transposed-copy', tile: values['tfjs-tile'] ? 'tfjs' : 'row-copy' };
const rows = [...byKernel].sort((a, b) => b[1].ms - a[1].ms).map(([kernel, e]) => ({ ...setup, kernel, ms: +e.ms.toFixed(2), calls: e.calls, share: +(e.ms / stepMs).toFixed(3) }));
if (values.json) {
  for (const r of rows) console.log(JSON.stringify(r));
  console.log(JSON.stringify({ ...setup, kernel: 'step (median)', ms: +stepMs.toFixed(2), steps: Number(values.steps) }));
} else {
  console.table(rows.map(({ kernel, ms, calls, share }) => ({ kernel, ms, calls, share })));
  console.log(`step: ${stepMs.toFixed(1)} ms (median of ${values.steps})`);
}
tf.dispose([x, y]);
model.dispose();
