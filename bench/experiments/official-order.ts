/**
 * The official PyTorch release's ENorm update for fully connected nets, as a training method
 * ('enorm-jacobi'), on a tfjs dense chain. Its loop over hidden layers i = 0 .. L - 3 (L kernels):
 *   d_i = (||col_i||_B / (c ||col_i||_A))^(1/2),  the p-norms of hidden unit i's outgoing and incoming weights
 *   then the norms for layer i + 1 are read, and only then K_i's output columns are multiplied by d_i
 *   and K_{i+1}'s input rows divided by it.
 * So every layer's norms are those of the weights at the start of the cycle (a Jacobi update, not
 * Gauss-Seidel: docs/ALGORITHM.md section 6), and the last hidden layer is not balanced. tfjs kernels
 * are [in, out]: incoming norms of layer i's units are K_i's column norms, outgoing ones K_{i+1}'s row
 * norms. Biases are left alone, as the release does. Returns false when a d is not a finite positive
 * number (a dead unit, an overflow), without writing any kernel: the caller treats that as divergence.
 */
import * as tf from '@tensorflow/tfjs';

/** The kernels of the model's dense layers, in order. */
export function denseKernels(model: tf.LayersModel): tf.LayerVariable[] {
  return model.layers.filter((l) => l.getClassName() === 'Dense').map((l) => l.trainableWeights.find((w) => w.name.includes('kernel'))!);
}

/**
 * The p-norms of a kernel's columns (axis 0) or rows (axis 1). At p = 2 as sqrt(sum(x * x)): tf.norm
 * squares with tfjs-backend-wasm's Pow kernel, which took 87 of the 125 ms of this step on the
 * width-500 k = 14 net (and differs from x * x in the last bit for some inputs).
 */
function norms(k: tf.Tensor, p: number, axis: number): tf.Tensor1D {
  return (p === 2 ? tf.sqrt(tf.sum(tf.square(k), axis)) : tf.norm(k, p, axis)) as tf.Tensor1D;
}

export function officialOrderStep(model: tf.LayersModel, c: number, p = 2): boolean {
  const kernels = denseKernels(model);
  if (kernels.length < 3) return true; // no hidden layer but the last: nothing is balanced
  const updated = tf.tidy(() => {
    const k = kernels.map((v) => v.read());
    const scales: tf.Tensor1D[] = [];
    let left = norms(k[0], p, 0);
    let right = norms(k[1], p, 1);
    for (let i = 1; i < k.length - 1; i++) {
      scales.push(tf.pow(tf.div(right, tf.mul(left, c)), 0.5) as tf.Tensor1D);
      left = norms(k[i], p, 0);
      right = norms(k[i + 1], p, 1);
    }
    const all = tf.concat(scales);
    const ok = tf.all(tf.logicalAnd(tf.isFinite(all), tf.greater(all, 0)));
    // K_{i-1} *= d (its output columns), K_i /= d (its input rows), for each balanced layer in turn.
    const out = [...k];
    scales.forEach((d, j) => {
      out[j] = tf.mul(out[j], d.reshape([1, -1]));
      out[j + 1] = tf.div(out[j + 1], d.reshape([-1, 1]));
    });
    return { ok, out: out.slice(0, -1) };
  });
  const finite = (updated.ok.dataSync() as Uint8Array)[0] === 1;
  if (finite) updated.out.forEach((t, i) => kernels[i].write(t));
  tf.dispose([updated.ok, ...updated.out]);
  return finite;
}
