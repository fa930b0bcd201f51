// Balance a randomly initialised ResNet-18 and check that its function is unchanged.
//   npx tsx examples/balance-resnet18.ts
import { balance, forward, mulberry32, resnet18 } from '../src/index.js';

const net = resnet18({ seed: 1 });
const shape = [16, 16, 3];
const rng = mulberry32(2);
const x = Float32Array.from({ length: 2 * 16 * 16 * 3 }, () => rng());
const before = forward(net, [x], { batch: 2, inputShapes: [shape] })[0];

const report = await balance(net, { c: 1, p: 2, tolerance: 1e-6, maxCycles: 100 });

const after = forward(net, [x], { batch: 2, inputShapes: [shape] })[0];
const deviation = Math.max(...after.map((y, i) => Math.abs(y - before[i]))) / Math.max(...before.map(Math.abs));
console.log(`backend ${report.backend}: ${report.units} units in ${report.groups} groups (${report.groups - 8} residual streams)`);
console.log(`energy ${report.energyBefore.toFixed(1)} -> ${report.energyAfter.toFixed(1)} in ${report.cycles} cycles, converged: ${report.converged}`);
console.log(`largest output change: ${deviation.toExponential(2)} of the largest output`);
