/**
 * Experiment 1: accuracy of deep fully connected nets against depth, for SGD, SGD + ENorm (c = 1.2),
 * BN and ENorm + BN. lr is picked per method and depth on the validation rows (seed 0), then every
 * seed trains with it and is scored on the test rows.
 */
import { fcNet } from './models.js';
import { rowsFor, type Context, type Task } from './context.js';
import type { FcMethod } from './protocol.js';
import { bestLr, ResultFile, type Row } from './store.js';
import { stepsOf, trainRun } from './train.js';

export interface FcSearchRow extends Row { method: FcMethod; depth: number; lr: number; seed: number; epochs: number; valAccuracy: number; diverged: boolean }
export interface FcRow extends Row {
  method: FcMethod; depth: number; seed: number; lr: number; epochs: number; testAccuracy: number;
  diverged: boolean; finalLoss: number | null; width: number; trainRows: number; backend: string; seconds: number;
}

export function fcDepthTasks(ctx: Context): Task[] {
  const p = ctx.protocol.fc;
  const search = new ResultFile<FcSearchRow>(ctx.resultsDir, 'fc-depth.lr-search');
  const results = new ResultFile<FcRow>(ctx.resultsDir, 'fc-depth');
  const { trainRows, validationRows, testRows } = rowsFor(ctx, p);
  const steps = stepsOf(trainRows.length, p.batchSize, p.epochs);

  const run = (method: FcMethod, depth: number, seed: number, lr: number, evalRows: number[], progress: (n: number) => void) =>
    trainRun({
      build: () => fcNet({ depth, width: p.width, norm: method.includes('bn') ? 'bn' : 'none', weightDecay: p.weightDecay, seed }),
      layout: 'flat', data: ctx.data, trainRows, evalRows, batchSize: p.batchSize, epochs: p.epochs, lr, momentum: 0,
      enormC: method.startsWith('enorm') ? p.c : null, seed, onStep: () => progress(1),
    });

  const tasks: Task[] = [];
  for (const depth of p.depths) {
    for (const method of p.methods) {
      for (const lr of p.lrGrid[method]) {
        tasks.push({
          label: `fc-depth lr search ${method} k=${depth} lr=${lr}`, cost: steps,
          done: () => !!search.find({ method, depth, lr }),
          run: async (progress) => {
            await ctx.use(ctx.backends.fc);
            const r = await run(method, depth, 0, lr, validationRows, progress);
            search.add({ method, depth, lr, seed: 0, epochs: p.epochs, valAccuracy: r.accuracy, diverged: r.diverged });
          },
        });
      }
      for (const seed of p.seeds) {
        tasks.push({
          label: `fc-depth ${method} k=${depth} seed ${seed}`, cost: steps,
          done: () => !!results.find({ method, depth, seed }),
          run: async (progress) => {
            await ctx.use(ctx.backends.fc);
            const lr = bestLr(search, { method, depth }, p.lrGrid[method], `fc-depth ${method} at depth ${depth}`);
            const r = await run(method, depth, seed, lr, testRows, progress);
            results.add({
              method, depth, seed, lr, epochs: p.epochs, testAccuracy: r.accuracy, diverged: r.diverged,
              finalLoss: Number.isFinite(r.finalLoss) ? r.finalLoss : null, width: p.width, trainRows: trainRows.length,
              backend: ctx.backends.fc, seconds: +r.seconds.toFixed(1),
            });
          },
        });
      }
    }
  }
  return tasks;
}
