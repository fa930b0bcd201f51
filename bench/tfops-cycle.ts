/**
 * The ENorm cycle written with tf ops (docs/ALGORITHM.md section 3), for one purpose: to measure it against
 * the WGSL kernels on the webgpu backend, as the issue asks. It follows the same compiled plan but
 * handles only views that cover whole tensors (true of the benchmark's MLP and conv net) and keeps
 * no finiteness check. Not part of the package.
 */
import * as tf from '@tensorflow/tfjs';
import type { View } from '../src/plan/ir.js';
import { prepare } from '../src/plan/prepare.js';
import { accumulatorsOf, assignTo, bindModel, valueOf, type ModelVariable } from '../src/tfjs/model.js';

export interface TfOpsCycle {
  run(): void;
}

export async function tfOpsCycle(model: tf.LayersModel, optimizer: tf.Optimizer, c: number, p = 2): Promise<TfOpsCycle> {
  const { network, variableOf } = bindModel(model, await accumulatorsOf(optimizer));
  const { plan } = prepare(network, { c, p });
  const slots = plan.tensors.map((t) => ({ variable: variableOf.get(t.data)!, companions: t.companions.map((m) => variableOf.get(m)!) }));
  for (const g of plan.groups) {
    for (const v of [...g.writers, ...g.readers]) {
      const n = plan.tensors[v.tensor].data.length;
      if (v.start !== 0 || v.outerStride !== v.count * v.inner || v.outer * v.outerStride !== n) {
        throw new Error(`tfOpsCycle handles whole-tensor views only (group ${g.name})`);
      }
    }
  }
  return {
    run() {
      tf.tidy(() => {
        // Current values: the tensor (index 0) and its companions, updated group by group.
        const current = new Map<ModelVariable, tf.Tensor>();
        const get = (v: ModelVariable) => current.get(v) ?? valueOf(v);
        const as3d = (v: View, x: tf.Tensor) => x.reshape([v.outer, v.count, v.inner]);
        const sums = (v: View) => {
          const x = as3d(v, get(slots[v.tensor].variable));
          return tf.sum(p === 2 ? tf.square(x) : tf.pow(tf.abs(x), p), [0, 2]);
        };
        const rescale = (v: View, s: tf.Tensor) => {
          const { variable, companions } = slots[v.tensor];
          const shape = variable.shape as number[];
          const by = s.reshape([1, v.count, 1]);
          current.set(variable, tf.mul(as3d(v, get(variable)), by).reshape(shape));
          for (const m of companions) current.set(m, tf.div(as3d(v, get(m)), by).reshape(shape));
        };
        for (const g of plan.groups) {
          const a = tf.addN(g.writers.filter((w) => w.inCost).map(sums));
          const b = tf.addN(g.readers.map(sums));
          const alive = tf.logicalAnd(tf.greater(a, 0), tf.greater(b, 0));
          const d = tf.where(alive, tf.div(tf.pow(tf.div(b, tf.where(alive, a, 1)), 1 / (2 * p)), Math.sqrt(c)), 1);
          for (const w of g.writers) rescale(w, d);
          for (const r of g.readers) rescale(r, tf.reciprocal(d));
        }
        for (const [variable, value] of current) assignTo(variable, value);
      });
    },
  };
}
