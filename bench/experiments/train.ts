/**
 * One training run: SGD (optionally with momentum) on rows of an image set, the learning rate
 * decayed linearly to 0 over the run, optionally one ENorm cycle after every step, then accuracy on
 * held-out rows.
 */
import * as tf from '@tensorflow/tfjs';
import { isENormError } from '../../src/errors.js';
import { mulberry32 } from '../../src/network/random.js';
import { enormStep } from '../../src/tfjs/index.js';
import { batchOf, shuffled, type ImageSet } from '../data/images.js';
import { officialOrderStep } from './official-order.js';

export interface RunSpec {
  build: () => tf.LayersModel;
  layout: 'flat' | 'image';
  data: ImageSet;
  trainRows: number[];
  evalRows: number[];
  batchSize: number;
  epochs: number;
  lr: number;
  momentum: number;
  /** ENorm's c after every step, or null for none. */
  enormC: number | null;
  /** Which ENorm update: the package's exact cycle (default) or the official release's order (./official-order.ts). */
  enormOrder?: 'exact' | 'official';
  seed: number;
  /** Called after every step with the number of steps done. */
  onStep?: (done: number, total: number) => void;
  /** Called with the trained model before it is evaluated and disposed. */
  onTrained?: (model: tf.LayersModel, optimizer: tf.Optimizer) => Promise<void>;
  /** Switches to the backend to evaluate on (tfjs moves the weights), e.g. wasm for conv nets trained on cpu. */
  beforeEval?: () => Promise<void>;
}

export interface RunResult {
  accuracy: number;
  /** Mean training loss over the last epoch (NaN once diverged). */
  finalLoss: number;
  /** The loss became non-finite (or ENorm saw non-finite weights); training stopped there. */
  diverged: boolean;
  steps: number;
  seconds: number;
}

export const stepsOf = (rows: number, batchSize: number, epochs: number) => Math.floor(rows / batchSize) * epochs;

export async function trainRun(spec: RunSpec): Promise<RunResult> {
  const started = performance.now();
  const model = spec.build();
  const optimizer = spec.momentum > 0 ? tf.train.momentum(spec.lr, spec.momentum) : tf.train.sgd(spec.lr);
  model.compile({ optimizer, loss: 'categoricalCrossentropy' });
  const perEpoch = Math.floor(spec.trainRows.length / spec.batchSize);
  const total = perEpoch * spec.epochs;
  const rand = mulberry32(spec.seed * 7919 + 1);
  let done = 0;
  let diverged = false;
  let lossSum = 0;
  for (let epoch = 0; epoch < spec.epochs && !diverged; epoch++) {
    const order = shuffled(spec.trainRows.length, rand);
    lossSum = 0;
    for (let s = 0; s < perEpoch; s++) {
      (optimizer as tf.SGDOptimizer).setLearningRate(spec.lr * (1 - done / total));
      const { x, y } = batchOf(spec.data, order.slice(s * spec.batchSize, (s + 1) * spec.batchSize).map((i) => spec.trainRows[i]), spec.layout);
      const loss = (await model.trainOnBatch(x, y)) as number;
      tf.dispose([x, y]);
      done++;
      lossSum += loss;
      if (!Number.isFinite(loss)) { diverged = true; break; }
      if (spec.enormC !== null && spec.enormOrder === 'official') {
        if (!officialOrderStep(model, spec.enormC)) { diverged = true; break; }
      } else if (spec.enormC !== null) {
        try {
          await enormStep(model, { optimizer, c: spec.enormC });
        } catch (e) {
          if (!(isENormError(e) && (e.code === 'E_OVERFLOW' || e.code === 'E_NONFINITE'))) throw e;
          diverged = true;
          break;
        }
      }
      spec.onStep?.(done, total);
      // tfjs's awaits here resolve as microtasks, so without this the loop never lets timers run:
      // the progress bar would not redraw and SIGINT would not stop the sweep until the run ends.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }
  await spec.onTrained?.(model, optimizer);
  await spec.beforeEval?.();
  const accuracy = spec.evalRows.length ? await evaluate(model, spec.data, spec.evalRows, spec.layout) : NaN;
  model.dispose();
  optimizer.dispose();
  return { accuracy, finalLoss: diverged ? NaN : lossSum / perEpoch, diverged, steps: done, seconds: (performance.now() - started) / 1000 };
}

/** Fraction of rows whose argmax prediction is the label. */
export async function evaluate(model: tf.LayersModel, data: ImageSet, rows: number[], layout: 'flat' | 'image'): Promise<number> {
  let correct = 0;
  for (let at = 0; at < rows.length; at += 1000) {
    const part = rows.slice(at, at + 1000);
    const { x, y } = batchOf(data, part, layout);
    const predicted = tf.tidy(() => tf.argMax(model.predict(x) as tf.Tensor, 1));
    const truth = tf.argMax(y, 1);
    const hits = tf.tidy(() => tf.sum(tf.equal(predicted, truth)));
    correct += (await hits.data())[0];
    tf.dispose([x, y, predicted, truth, hits]);
  }
  return correct / rows.length;
}
