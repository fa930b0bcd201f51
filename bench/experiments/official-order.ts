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

export function officialOrderStep(model: tf.LayersModel, c: number, p = 2): boolean {
  const kernels = denseKernels(model);
  if (kernels.length < 3) return true; // no hidden layer but the last: nothing is balanced
  const updated = tf.tidy(() => {
    const k = kernels.map((v) => v.read());
    const scales: tf.Tensor1D[] = [];
    let left = tf.norm(k[0], p, 0) as tf.Tensor1D;
    let right = tf.norm(k[1], p, 1) as tf.Tensor1D;
    for (let i = 1; i < k.length - 1; i++) {
      scales.push(tf.pow(tf.div(right, tf.mul(left, c)), 0.5) as tf.Tensor1D);
      left = tf.norm(k[i], p, 0) as tf.Tensor1D;
      right = tf.norm(k[i + 1], p, 1) as tf.Tensor1D;
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
