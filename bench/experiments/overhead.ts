/**
 * Experiment 3: median time of one training step per method, on every backend that can run it,
 * with the method-free step of the same model, backend and batch as the same-run baseline.
 */
import * as tf from '@tensorflow/tfjs';
import { enormStep } from '../../src/tfjs/index.js';
import { batchOf } from '../data/images.js';
import { medianMs } from '../stats.js';
import type { Context, Task } from './context.js';
import { convNet, fcNet } from './models.js';
import { ResultFile, type Row } from './store.js';

export interface OverheadRow extends Row {
  model: string; method: string; backend: string; batchSize: number; msPerStep: number; baselineMs: number; ratio: number; adapter: string | null;
}

interface Method { name: string; build: () => tf.LayersModel; enormC: number | null }

async function medianStepMs(ctx: Context, m: Method, layout: 'flat' | 'image', batchSize: number, momentum: number, steps: number): Promise<number> {
  const model = m.build();
  const optimizer = momentum > 0 ? tf.train.momentum(0.01, momentum) : tf.train.sgd(0.01);
  model.compile({ optimizer, loss: 'categoricalCrossentropy' });
  const { x, y } = batchOf(ctx.data, ctx.split.train.slice(0, batchSize), layout);
  const step = async () => {
    await model.trainOnBatch(x, y);
    if (m.enormC !== null) await enormStep(model, { optimizer, c: m.enormC });
  };
  const ms = await medianMs(step, steps, 2); // warm-up: compiles kernels, builds the ENorm plan
  tf.dispose([x, y]);
  model.dispose();
  return ms;
}

export function overheadTasks(ctx: Context): Task[] {
  const { overhead, fc, smallBatch } = ctx.protocol;
  const results = new ResultFile<OverheadRow>(ctx.resultsDir, 'overhead');
  const depth = Math.max(...fc.depths);
  const fcName = `fc 784-${fc.width}x${depth + 1}-10`;
  const convName = `conv ${smallBatch.channels.join('-')}`;
  const fcMethods: Method[] = fc.methods.map((name) => ({
    name, enormC: name.startsWith('enorm') ? fc.c : null,
    build: () => fcNet({ depth, width: fc.width, norm: name.includes('bn') ? 'bn' : 'none', weightDecay: fc.weightDecay, seed: 1 }),
  }));
  const convMethods: Method[] = smallBatch.methods.map((name) => ({
    name, enormC: name === 'enorm' ? smallBatch.c : null,
    build: () => convNet({ channels: smallBatch.channels, downsample: smallBatch.downsample, norm: name === 'bn' || name === 'gn' ? name : 'none', weightDecay: smallBatch.weightDecay, bnMomentum: smallBatch.bnMomentum, seed: 1 }),
  }));
  const tasks: Task[] = [];
  for (const backend of ctx.backends.all) {
    const cases = [
      { model: fcName, methods: fcMethods, layout: 'flat' as const, batchSize: overhead.fcBatch, momentum: 0 },
      // tfjs-backend-wasm 4.22 has no convolution gradients.
      ...(backend === 'wasm' ? [] : [{ model: convName, methods: convMethods, layout: 'image' as const, batchSize: overhead.convBatch, momentum: smallBatch.momentum }]),
    ];
    for (const c of cases) {
      tasks.push({
        label: `overhead ${c.model} on ${backend}`, cost: (c.methods.length + 1) * (overhead.steps + 2) * (c.layout === 'image' ? 4 : 1),
        done: () => c.methods.every((m) => !!results.find({ model: c.model, method: m.name, backend })),
        run: async (progress) => {
          await ctx.use(backend);
          // Rows are written together, so an interrupted case is timed again in full.
          const rows: OverheadRow[] = [];
          const base = await medianStepMs(ctx, c.methods[0], c.layout, c.batchSize, c.momentum, overhead.steps);
          for (const m of c.methods) {
            const ms = m === c.methods[0] ? base : await medianStepMs(ctx, m, c.layout, c.batchSize, c.momentum, overhead.steps);
            rows.push({
              model: c.model, method: m.name, backend, batchSize: c.batchSize, msPerStep: +ms.toFixed(3), baselineMs: +base.toFixed(3),
              ratio: +(ms / base).toFixed(4), adapter: backend === 'webgpu' ? ctx.backends.adapter ?? null : null,
            });
            progress((overhead.steps + 2) * (c.layout === 'image' ? 4 : 1));
          }
          rows.forEach((r) => results.add(r));
        },
      });
    }
  }
  return tasks;
}
