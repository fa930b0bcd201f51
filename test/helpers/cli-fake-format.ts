/**
 * A model format held in memory, for CLI tests of the ModelFormat hooks (foldBatchNorm, runtime,
 * weightNames, output: 'file') that no real format may have yet: `*.fake` paths read a small
 * dense -> batch norm -> relu -> dense network; what it writes is kept in `fakeState.written`.
 */
import type { ModelFormat, ModelRunner } from '../../src/model-io/format.js';
import { foldBatchNorm } from '../../src/network/fold.js';
import { forward } from '../../src/network/forward.js';
import type { Network } from '../../src/network/layers.js';
import { mulberry32 } from '../../src/network/random.js';

export interface FakeModel { network: Network; inputShape: number[] }

export const fakeState: {
  written?: FakeModel;
  /** Why the runtime is unavailable; undefined: it runs (enorm's forward pass in float32). */
  unavailable?: string;
  /** Whether the fold also doubles the last kernel (changes the function). */
  badFold?: boolean;
  /** Runs of the runtime (before and after balancing). */
  runs: number;
} = { runs: 0 };

const uniform = (n: number, seed: number) => { const r = mulberry32(seed); return Float32Array.from({ length: n }, () => r() * 2 - 1); };

export function fakeNetwork(): Network {
  return [
    { kind: 'input', name: 'x', shape: [4] },
    { kind: 'dense', name: 'fc1', weight: uniform(24, 1), shape: [4, 6], bias: uniform(6, 2) },
    { kind: 'batch-norm', name: 'bn', gamma: uniform(6, 3).map((g) => 1 + g / 2), beta: uniform(6, 4), mean: uniform(6, 5), variance: uniform(6, 6).map((v) => 1 + v / 2) },
    { kind: 'relu', name: 'relu' },
    { kind: 'dense', name: 'fc2', weight: uniform(18, 7).map((w) => w * 10), shape: [6, 3], bias: uniform(3, 8) },
  ];
}

const runner = (m: FakeModel): ModelRunner => async (x, n, shape) => Float32Array.from(forward(m.network, [x], { batch: n, inputShapes: [[...shape]] })[0]);

export const fakeFormat: ModelFormat<FakeModel> = {
  name: 'fake',
  argument: 'model.fake',
  output: 'file',
  detect: (path) => path.endsWith('.fake'),
  read: async () => ({ network: fakeNetwork(), inputShape: [4] }),
  write: async (m, path) => { fakeState.written = m; return [path]; },
  verification: (m) => m,
  foldBatchNorm: (m) => {
    const network = foldBatchNorm(m.network);
    if (fakeState.badFold) (network[network.length - 1] as { weight: Float32Array }).weight[0] *= 2;
    return { ...m, network };
  },
  runtime: async (m) => {
    if (fakeState.unavailable) return { unavailable: fakeState.unavailable };
    fakeState.runs++;
    return runner(m);
  },
  weightNames: (m) => m.network.flatMap((l) => ('weight' in l ? [{ name: `graph.${l.name}.W`, data: l.weight, layer: l.name ?? '', tensor: 'weight' }] : [])),
};
