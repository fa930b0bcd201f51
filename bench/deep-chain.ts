/**
 * The deep, badly scaled chain of the convergence figures (docs/ALGORITHM.md 3c): an MLP of
 * `depth` dense layers at `width`, He init, no biases, then every hidden unit's incoming row times
 * e^{spread z} and outgoing column times e^{-spread z} (z standard normal): the same function, with
 * scales far from balanced. Used by bench/cycle.ts's convergence case and by the tests.
 */
import { mlp } from '../src/network/builders.js';
import type { DenseLayer, Network } from '../src/network/layers.js';

export interface DeepChainOptions {
  depth: number;
  width: number;
  input?: number;
  classes?: number;
  spread?: number;
  seed?: number;
}

export function deepChain({ depth, width, input = width, classes = 10, spread = 1, seed = 1 }: DeepChainOptions): Network {
  const net = mlp({ sizes: [input, ...Array(depth - 1).fill(width), classes], bias: false, seed });
  const dense = net.filter((l): l is DenseLayer => l.kind === 'dense');
  let state = seed * 2654435761 >>> 0;
  const uniform = () => ((state = (Math.imul(state ^ (state >>> 15), 2246822519) + 0x9e3779b9) >>> 0) + 0.5) / 2 ** 32;
  for (let k = 0; k + 1 < dense.length; k++) {
    // io layout: weight[i * out + j]; unit j of layer k is column j of W_k and row j of W_{k+1}.
    const [w, next] = [dense[k], dense[k + 1]];
    const out = w.shape[1];
    for (let j = 0; j < out; j++) {
      const z = Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
      const f = Math.exp(spread * z);
      for (let i = 0; i < w.shape[0]; i++) w.weight[i * out + j] *= f;
      for (let m = 0; m < next.shape[1]; m++) next.weight[j * next.shape[1] + m] /= f;
    }
  }
  return net;
}
