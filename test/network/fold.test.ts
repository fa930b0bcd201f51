import { describe, expect, it } from 'vitest';
import { balance } from '../../src/engine/enorm.js';
import { resnet18, vgg } from '../../src/network/builders.js';
import { foldBatchNorm } from '../../src/network/fold.js';
import { maxRelDiff, randomInputs, run, snapshot } from '../helpers/nets.js';

describe('foldBatchNorm', () => {
  it.each([
    { name: 'VGG-style hwio', make: () => vgg({ inputSize: 8, stages: [[4, 4], [6]], batchNorm: true, seed: 1 }), shape: [8, 8, 3] },
    { name: 'VGG-style oihw', make: () => vgg({ inputSize: 8, stages: [[4], [6]], batchNorm: true, layout: 'oihw', seed: 2 }), shape: [3, 8, 8] },
    { name: 'ResNet-18 width 4', make: () => resnet18({ width: 4, seed: 3 }), shape: [8, 8, 3] },
  ])('$name: same function, no batch norm left, input untouched; the folded net balances', async ({ make, shape }) => {
    const net = make();
    const before = snapshot(net);
    const folded = foldBatchNorm(net);
    expect(snapshot(net)).toEqual(before);
    expect(folded.some((l) => l.kind === 'batch-norm')).toBe(false);
    const x = randomInputs(shape, 3, 9);
    const y = run(net, x, 3, shape);
    expect(maxRelDiff(run(folded, x, 3, shape), y)).toBeLessThan(1e-5);
    const report = await balance(folded, { maxCycles: 50 });
    expect(report.energyAfter).toBeLessThan(report.energyBefore);
    expect(maxRelDiff(run(folded, x, 3, shape), y)).toBeLessThan(1e-5);
  });
});
