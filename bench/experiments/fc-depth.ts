/**
 * Experiment 1: accuracy of deep fully connected nets against depth, for SGD, SGD + ENorm (c = 1.2),
 * BN and ENorm + BN. lr is picked per method and depth on the validation rows (seed 0), then every
 * seed trains with it and is scored on the test rows.
 */
import { fcNet } from './models.js';
import { rowsFor, type Context, type Task } from './context.js';
import type { FcMethod, FcSettings, FcWideMethod } from './protocol.js';
import { bestLr, ResultFile, type Row } from './store.js';
import { stepsOf, trainRun } from './train.js';

export interface FcSearchRowOf<M extends string> extends Row { method: M; depth: number; lr: number; seed: number; epochs: number; valAccuracy: number; diverged: boolean }
export interface FcRowOf<M extends string> extends Row {
  method: M; depth: number; seed: number; lr: number; epochs: number; testAccuracy: number;
  diverged: boolean; finalLoss: number | null; width: number; trainRows: number; backend: string; seconds: number;
}
export type FcSearchRow = FcSearchRowOf<FcMethod>;
export type FcRow = FcRowOf<FcMethod>;

/**
 * What the two depth experiments share: their result files, one training run of their net, and the
 * search and result tasks. A search task trains on the training rows and scores the validation rows
 * (seed 0); a result task trains with the best searched lr at lrDepth and scores the test rows.
 * Each step of a run adds `units` to the progress bar.
 */
function fcExperiment<M extends FcWideMethod>(ctx: Context, p: FcSettings<M>, name: string) {
  const search = new ResultFile<FcSearchRowOf<M>>(ctx.resultsDir, `${name}.lr-search`);
  const results = new ResultFile<FcRowOf<M>>(ctx.resultsDir, name);
  const { trainRows, validationRows, testRows } = rowsFor(ctx, p);
  const run = (method: M, depth: number, seed: number, lr: number, epochs: number, evalRows: number[], onStep: () => void) =>
    trainRun({
      build: () => fcNet({ depth, width: p.width, norm: method.includes('bn') ? 'bn' : 'none', weightDecay: p.weightDecay, seed }),
      layout: 'flat', data: ctx.data, trainRows, evalRows, batchSize: p.batchSize, epochs, lr, momentum: 0,
      enormC: method.startsWith('enorm') ? p.c : null, enormOrder: method === 'enorm-jacobi' ? 'official' : 'exact', seed, onStep,
    });
  const steps = (epochs: number) => stepsOf(trainRows.length, p.batchSize, epochs);
  const searchTask = (method: M, depth: number, lr: number, epochs: number, units: number): Task => ({
    label: `${name} lr search ${method} k=${depth} lr=${lr}`, cost: steps(epochs) * units,
    done: () => !!search.find({ method, depth, lr } as Partial<FcSearchRowOf<M>>),
    run: async (progress) => {
      await ctx.use(ctx.backends.fc);
      const r = await run(method, depth, 0, lr, epochs, validationRows, () => progress(units));
      search.add({ method, depth, lr, seed: 0, epochs, valAccuracy: r.accuracy, diverged: r.diverged } as FcSearchRowOf<M>, { method, depth, lr } as Partial<FcSearchRowOf<M>>);
    },
  });
  const resultTask = (method: M, depth: number, seed: number, lrDepth: number, units: number): Task => ({
    label: `${name} ${method} k=${depth} seed ${seed}`, cost: steps(p.epochs) * units,
    done: () => !!results.find({ method, depth, seed } as Partial<FcRowOf<M>>),
    ready: () => p.lrGrid[method].every((lr) => !!search.find({ method, depth: lrDepth, lr } as Partial<FcSearchRowOf<M>>)),
    run: async (progress) => {
      await ctx.use(ctx.backends.fc);
      const lr = bestLr(search, { method, depth: lrDepth } as Partial<FcSearchRowOf<M>>, p.lrGrid[method], `${name} ${method} at depth ${lrDepth}`);
      const r = await run(method, depth, seed, lr, p.epochs, testRows, () => progress(units));
      results.add({
        method, depth, seed, lr, epochs: p.epochs, testAccuracy: r.accuracy, diverged: r.diverged,
        finalLoss: Number.isFinite(r.finalLoss) ? r.finalLoss : null, width: p.width, trainRows: trainRows.length,
        backend: ctx.backends.fc, seconds: +r.seconds.toFixed(1),
      } as FcRowOf<M>, { method, depth, seed } as Partial<FcRowOf<M>>);
    },
  });
  return { searchTask, resultTask };
}

export function fcDepthTasks(ctx: Context): Task[] {
  const p = ctx.protocol.fc;
  const { searchTask, resultTask } = fcExperiment(ctx, p, 'fc-depth');
  const tasks: Task[] = [];
  for (const depth of p.depths) {
    for (const method of p.methods) {
      for (const lr of p.lrGrid[method]) tasks.push(searchTask(method, depth, lr, p.epochs, 1));
      for (const seed of p.seeds) tasks.push(resultTask(method, depth, seed, depth, 1));
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
  const { searchTask, resultTask } = fcExperiment(ctx, p, 'fc-depth-w500');
  const tasks: Task[] = [];
  for (const method of p.methods) for (const lr of p.lrGrid[method]) tasks.push(searchTask(method, p.searchDepth, lr, p.searchEpochs, p.searchDepth + 2));
  for (const k of p.depths) for (const seed of p.seeds) for (const method of p.methods) tasks.push(resultTask(method, k, seed, p.searchDepth, k + 2));
  return tasks;
}
