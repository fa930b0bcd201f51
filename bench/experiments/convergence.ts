/**
 * Experiment 4: energy against cycles on a trained network (the deepest fully connected net of
 * experiment 1, trained without normalization), for the exact cycle and the official release's
 * Jacobi-style update, at c = 1 and c = 1.2; all in float64 on the same plan. Each curve is reported
 * as the distance of the weights to the fixed point of its c (max relative difference) and, for
 * c = 1 where the fixed point minimises E, as the energy gap (E - E*) / E*.
 */
import type { Network } from '../../src/network/layers.js';
import { prepare } from '../../src/plan/prepare.js';
import { referenceCycle, referenceEnergy } from '../../src/reference/reference.js';
import { accumulatorsOf, bindModel, valueOf } from '../../src/tfjs/model.js';
import type { Context, Task } from './context.js';
import { maxRelDiff } from '../stats.js';
import { jacobiCycle } from './jacobi.js';
import { fcNet } from './models.js';
import { ResultFile, type Row } from './store.js';
import { stepsOf, trainRun } from './train.js';

export interface ConvergenceRow extends Row {
  network: string; update: 'exact' | 'jacobi'; c: number; cycle: number; energy: number;
  /** (E - E*) / E*; null for c != 1, whose fixed point does not minimise E. */
  gap: number | null;
  /** Max relative difference of the weights from the fixed point. */
  distance: number;
}
export interface ConvergenceSummaryRow extends Row {
  network: string; update: 'exact' | 'jacobi'; c: number; cycles: number; energyBefore: number; fixedPointEnergy: number;
  /** First cycle whose weights are within 1e-6 (relative) of the fixed point, or null. */
  cyclesToDistance1e6: number | null; finalDistance: number; finalGap: number | null;
}

const FIXED_POINT_CYCLES = 5000;
const FIXED_POINT_STEP = 1e-14;

export function convergenceTasks(ctx: Context): Task[] {
  const { fc, convergence } = ctx.protocol;
  const curves = new ResultFile<ConvergenceRow>(ctx.resultsDir, 'convergence');
  const summary = new ResultFile<ConvergenceSummaryRow>(ctx.resultsDir, 'convergence.summary');
  const depth = Math.max(...fc.depths);
  const network = `fc 784-${fc.width}x${depth + 1}-10, SGD ${convergence.trainEpochs} epochs`;
  const trainRows = ctx.split.train.slice(0, fc.trainRows);
  const lr = fc.lrGrid.baseline[Math.floor(fc.lrGrid.baseline.length / 2)];
  return [{
    label: `convergence on ${network}`,
    cost: stepsOf(trainRows.length, fc.batchSize, convergence.trainEpochs) + 50,
    done: () => !!summary.find({ network }),
    run: async (progress) => {
      await ctx.use(ctx.backends.fc);
      // Train, then read the weights into an enorm Network.
      let net: Network | null = null;
      await trainRun({
        build: () => fcNet({ depth, width: fc.width, norm: 'none', weightDecay: fc.weightDecay, seed: 1 }),
        layout: 'flat', data: ctx.data, trainRows, evalRows: [], batchSize: fc.batchSize, epochs: convergence.trainEpochs, lr, momentum: 0,
        enormC: null, seed: 1, onStep: () => progress(1),
        onTrained: async (model, optimizer) => {
          const bound = bindModel(model, await accumulatorsOf(optimizer));
          for (const [data, variable] of bound.variableOf) data.set(await valueOf(variable).data());
          net = bound.network;
        },
      });
      const rows: ConvergenceRow[] = [];
      const ends: ConvergenceSummaryRow[] = [];
      for (const c of [1, 1.2]) {
        const { plan } = prepare(net!, { c });
        const start = plan.tensors.map((t) => Float64Array.from(t.data));
        const energyBefore = referenceEnergy(plan, start, 2);
        // The fixed point: exact cycles until a cycle moves no weight by more than FIXED_POINT_STEP (relative).
        const fixed = start.map((t) => t.slice());
        for (let k = 0; k < FIXED_POINT_CYCLES; k++) {
          const before = fixed.map((t) => t.slice());
          referenceCycle(plan, fixed, plan.tensors.map(() => []), 2, c);
          if (maxRelDiff(fixed, before) <= FIXED_POINT_STEP) break;
        }
        const eStar = referenceEnergy(plan, fixed, 2);
        const gapOf = (e: number) => (c === 1 ? (e - eStar) / eStar : null);
        for (const update of ['exact', 'jacobi'] as const) {
          const tensors = start.map((t) => t.slice());
          let reached: number | null = null;
          let energy = energyBefore;
          let distance = maxRelDiff(tensors, fixed);
          rows.push({ network, update, c, cycle: 0, energy, gap: gapOf(energy), distance });
          for (let cycle = 1; cycle <= convergence.cycles; cycle++) {
            if (update === 'exact') referenceCycle(plan, tensors, plan.tensors.map(() => []), 2, c);
            else jacobiCycle(plan, tensors, 2, c);
            energy = referenceEnergy(plan, tensors, 2);
            distance = maxRelDiff(tensors, fixed);
            if (reached === null && distance <= 1e-6) reached = cycle;
            rows.push({ network, update, c, cycle, energy, gap: gapOf(energy), distance });
          }
          ends.push({
            network, update, c, cycles: convergence.cycles, energyBefore, fixedPointEnergy: eStar, cyclesToDistance1e6: reached,
            finalDistance: distance, finalGap: gapOf(energy),
          });
        }
        progress(25);
      }
      rows.forEach((r) => curves.add(r));
      ends.forEach((r) => summary.add(r));
    },
  }];
}
