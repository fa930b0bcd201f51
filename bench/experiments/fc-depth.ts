/**
 * Experiment 1: accuracy of deep fully connected nets against depth, for SGD, SGD + ENorm (c = 1.2),
 * BN and ENorm + BN. lr is picked per method and depth on the validation rows (seed 0), then every
 * seed trains with it and is scored on the test rows.
 */
import { fcNet } from './models.js';
import { rowsFor, type Context, type Task } from './context.js';
import type { FcMethod, FcWideMethod } from './protocol.js';
import { bestLr, ResultFile, type Row } from './store.js';
import { stepsOf, trainRun } from './train.js';

export interface FcSearchRowOf<M extends string> extends Row { method: M; depth: number; lr: number; seed: number; epochs: number; valAccuracy: number; diverged: boolean }
export interface FcRowOf<M extends string> extends Row {
  method: M; depth: number; seed: number; lr: number; epochs: number; testAccuracy: number;
  diverged: boolean; finalLoss: number | null; width: number; trainRows: number; backend: string; seconds: number;
}
export type FcSearchRow = FcSearchRowOf<FcMethod>;
export type FcRow = FcRowOf<FcMethod>;

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

export type FcWideSearchRow = FcSearchRowOf<FcWideMethod>;
export type FcWideRow = FcRowOf<FcWideMethod>;

/**
 * Experiment 1 at the paper's width (protocol.fcWide): the same rows as fc-depth, plus the official
 * release's update order as a method ('enorm-jacobi'). Each method's lr is picked once, at
 * searchDepth, by shorter runs (searchEpochs) on the validation rows, and used at every depth.
 * Tasks run searches first, then depth by depth in the protocol's order, seed by seed, every method
 * per seed, so that a sweep cut short has whole seeds of the depths that matter most. A task's cost is
 * steps x (depth + 2) (the dense layers it trains), for the ETA.
 */
export function fcWideTasks(ctx: Context): Task[] {
  const p = ctx.protocol.fcWide;
  const search = new ResultFile<FcWideSearchRow>(ctx.resultsDir, 'fc-depth-w500.lr-search');
  const results = new ResultFile<FcWideRow>(ctx.resultsDir, 'fc-depth-w500');
  const { trainRows, validationRows, testRows } = rowsFor(ctx, p);

  const run = (method: FcWideMethod, depth: number, seed: number, lr: number, epochs: number, evalRows: number[], progress: (n: number) => void) =>
    trainRun({
      build: () => fcNet({ depth, width: p.width, norm: method.includes('bn') ? 'bn' : 'none', weightDecay: p.weightDecay, seed }),
      layout: 'flat', data: ctx.data, trainRows, evalRows, batchSize: p.batchSize, epochs, lr, momentum: 0,
      enormC: method.startsWith('enorm') ? p.c : null, enormOrder: method === 'enorm-jacobi' ? 'official' : 'exact',
      seed, onStep: () => progress(depth + 2),
    });

  const tasks: Task[] = [];
  const depth = p.searchDepth;
  for (const method of p.methods) {
    for (const lr of p.lrGrid[method]) {
      tasks.push({
        label: `fc-depth-w500 lr search ${method} k=${depth} lr=${lr}`, cost: stepsOf(trainRows.length, p.batchSize, p.searchEpochs) * (depth + 2),
        done: () => !!search.find({ method, depth, lr }),
        run: async (progress) => {
          await ctx.use(ctx.backends.fc);
          const r = await run(method, depth, 0, lr, p.searchEpochs, validationRows, progress);
          search.add({ method, depth, lr, seed: 0, epochs: p.searchEpochs, valAccuracy: r.accuracy, diverged: r.diverged });
        },
      });
    }
  }
  for (const k of p.depths) {
    for (const seed of p.seeds) {
      for (const method of p.methods) {
        tasks.push({
          label: `fc-depth-w500 ${method} k=${k} seed ${seed}`, cost: stepsOf(trainRows.length, p.batchSize, p.epochs) * (k + 2),
          done: () => !!results.find({ method, depth: k, seed }),
          run: async (progress) => {
            await ctx.use(ctx.backends.fc);
            const lr = bestLr(search, { method, depth }, p.lrGrid[method], `fc-depth-w500 ${method} at depth ${depth}`);
            const r = await run(method, k, seed, lr, p.epochs, testRows, progress);
            results.add({
              method, depth: k, seed, lr, epochs: p.epochs, testAccuracy: r.accuracy, diverged: r.diverged,
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
