// One ENorm cycle after every SGD step, with momentum buffers moved along with their weights.
// A ReLU MLP (no biases) learns to imitate a random teacher MLP with SGD + momentum 0.9.
//   npx tsx examples/sgd-with-enorm.ts
import { ENorm, mlp, mulberry32, type DenseLayer, type Network } from '../src/index.js';

const sizes = [8, 32, 32, 1];
const denseOf = (net: Network) => net.filter((l): l is DenseLayer => l.kind === 'dense');
const student = mlp({ sizes, seed: 1, bias: false });
const teacher = denseOf(mlp({ sizes, seed: 2, bias: false }));
const layers = denseOf(student);
const momentum = layers.map((l) => new Float32Array(l.weight.length));
layers.forEach((l, k) => { l.companions = { weight: momentum[k] }; });

/** Activations of every layer for input x (dense 'io' + relu between). */
function activations(net: DenseLayer[], x: Float32Array): Float32Array[] {
  const acts = [x];
  net.forEach((l, k) => {
    const [nIn, nOut] = l.shape;
    const out = new Float32Array(nOut);
    for (let i = 0; i < nIn; i++) for (let o = 0; o < nOut; o++) out[o] += acts[k][i] * l.weight[i * nOut + o];
    if (k < net.length - 1) out.forEach((v, o) => { out[o] = Math.max(0, v); });
    acts.push(out);
  });
  return acts;
}

/** Adds d(0.5 (y - target)^2)/dW to grads; returns the loss. */
function backprop(net: DenseLayer[], x: Float32Array, target: number, grads: Float32Array[]): number {
  const acts = activations(net, x);
  const error = acts[net.length][0] - target;
  let delta = Float32Array.of(error);
  for (let k = net.length - 1; k >= 0; k--) {
    const [nIn, nOut] = net[k].shape;
    const back = new Float32Array(nIn);
    for (let i = 0; i < nIn; i++) {
      for (let o = 0; o < nOut; o++) {
        grads[k][i * nOut + o] += acts[k][i] * delta[o];
        back[i] += net[k].weight[i * nOut + o] * delta[o];
      }
      if (acts[k][i] <= 0) back[i] = 0; // relu'(pre-activation), and the input layer needs no delta
    }
    delta = back;
  }
  return 0.5 * error * error;
}

const engine = await ENorm.create(student, { c: 1 }); // plan and memory built once, reused every step
const rng = mulberry32(3);
const lr = 0.01;
const batch = 16;
for (let step = 1; step <= 300; step++) {
  const grads = layers.map((l) => new Float32Array(l.weight.length));
  let loss = 0;
  for (let b = 0; b < batch; b++) {
    const x = Float32Array.from({ length: sizes[0] }, () => 2 * rng() - 1);
    const target = activations(teacher, x)[teacher.length][0];
    loss += backprop(layers, x, target, grads) / batch;
  }
  layers.forEach((l, k) => {
    for (let i = 0; i < l.weight.length; i++) {
      momentum[k][i] = 0.9 * momentum[k][i] + grads[k][i] / batch;
      l.weight[i] -= lr * momentum[k][i];
    }
  });
  engine.step(); // the ENorm cycle: weights x d, momentum / d, in place
  if (step % 100 === 0) console.log(`step ${step}: loss ${loss.toFixed(4)}, weight energy ${engine.energy().toFixed(2)}`);
}
