/**
 * Experiment 2: a small fully convolutional net on Fashion-MNIST at batch sizes from 2 to 128, with
 * no normalization, BN, GN, or ENorm (c = 1.1); momentum 0.9 for all, with ENorm rescaling the
 * momentum buffers. lr: a base value per method times the best of a few factors on the validation
 * rows at batch 32 (seed 0), scaled linearly with the batch size.
 */
import { convNet } from './models.js';
import { rowsFor, type Context, type Task } from './context.js';
import type { ConvMethod } from './protocol.js';
import { bestLr, ResultFile, type Row } from './store.js';
import { stepsOf, trainRun } from './train.js';

export interface SmallBatchSearchRow extends Row { method: ConvMethod; batchSize: number; lr: number; seed: number; epochs: number; valAccuracy: number; diverged: boolean }
export interface SmallBatchRow extends Row {
  method: ConvMethod; batchSize: number; seed: number; lr: number; epochs: number; testAccuracy: number;
  diverged: boolean; finalLoss: number | null; trainRows: number; backend: string; seconds: number;
}

export function smallBatchTasks(ctx: Context): Task[] {
  const p = ctx.protocol.smallBatch;
  const search = new ResultFile<SmallBatchSearchRow>(ctx.resultsDir, 'small-batch.lr-search');
  const results = new ResultFile<SmallBatchRow>(ctx.resultsDir, 'small-batch');
  const { trainRows, validationRows, testRows } = rowsFor(ctx, p);
  const SEARCH_BATCH = 32;
  const lrs = (method: ConvMethod, batchSize: number) => p.lrFactors.map((f) => +(p.lrAt32[method] * (batchSize / SEARCH_BATCH) * f).toPrecision(4));

  const run = (method: ConvMethod, batchSize: number, seed: number, lr: number, evalRows: number[], progress: (n: number) => void) =>
    trainRun({
      build: () => convNet({ channels: p.channels, downsample: p.downsample, norm: method === 'bn' || method === 'gn' ? method : 'none', weightDecay: p.weightDecay, bnMomentum: p.bnMomentum, seed }),
      layout: 'image', data: ctx.data, trainRows, evalRows, batchSize, epochs: p.epochs, lr, momentum: p.momentum,
      enormC: method === 'enorm' ? p.c : null, seed, onStep: () => progress(1), beforeEval: () => ctx.use(ctx.backends.convEval),
    });

  /** The batch-32 lr with the best validation accuracy, scaled to batchSize. */
  const lrFor = (method: ConvMethod, batchSize: number) => {
    const grid = lrs(method, SEARCH_BATCH);
    if (grid.length === 1) return lrs(method, batchSize)[0];
    const best = bestLr(search, { method, batchSize: SEARCH_BATCH }, grid, `small-batch ${method} at batch ${SEARCH_BATCH}`);
    return lrs(method, batchSize)[grid.indexOf(best)];
  };

  const tasks: Task[] = [];
  if (!p.batchSizes.includes(SEARCH_BATCH)) throw new Error(`small-batch: the batch sizes must include ${SEARCH_BATCH}, where lr is searched`);
  const searchSteps = stepsOf(trainRows.length, SEARCH_BATCH, p.epochs);
  for (const method of p.methods) {
    const grid = lrs(method, SEARCH_BATCH);
    if (grid.length < 2) continue;
    for (const lr of grid) {
      tasks.push({
        label: `small-batch lr search ${method} b=${SEARCH_BATCH} lr=${lr}`, cost: searchSteps,
        done: () => !!search.find({ method, batchSize: SEARCH_BATCH, lr }),
        run: async (progress) => {
          await ctx.use(ctx.backends.conv);
          const r = await run(method, SEARCH_BATCH, 0, lr, validationRows, progress);
          search.add({ method, batchSize: SEARCH_BATCH, lr, seed: 0, epochs: p.epochs, valAccuracy: r.accuracy, diverged: r.diverged }, { method, batchSize: SEARCH_BATCH, lr });
        },
      });
    }
  }
  for (const batchSize of p.batchSizes) {
    const steps = stepsOf(trainRows.length, batchSize, p.epochs);
    for (const method of p.methods) {
      for (const seed of p.seeds) {
        tasks.push({
          label: `small-batch ${method} b=${batchSize} seed ${seed}`, cost: steps,
          done: () => !!results.find({ method, batchSize, seed }),
          ready: () => lrs(method, SEARCH_BATCH).length < 2 || lrs(method, SEARCH_BATCH).every((lr) => !!search.find({ method, batchSize: SEARCH_BATCH, lr })),
          run: async (progress) => {
            await ctx.use(ctx.backends.conv);
            const lr = lrFor(method, batchSize);
            const r = await run(method, batchSize, seed, lr, testRows, progress);
            results.add({
              method, batchSize, seed, lr, epochs: p.epochs, testAccuracy: r.accuracy, diverged: r.diverged,
              finalLoss: Number.isFinite(r.finalLoss) ? r.finalLoss : null, trainRows: trainRows.length,
              backend: ctx.backends.conv, seconds: +r.seconds.toFixed(1),
            }, { method, batchSize, seed });
          },
        });
      }
    }
  }
  return tasks;
}
