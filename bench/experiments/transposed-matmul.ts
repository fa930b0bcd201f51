/**
 * A faster BatchMatMul for tfjs-backend-wasm when an operand is transposed. tfjs 4.22's wasm kernel
 * takes XNNPACK's fast path only for transposeA = transposeB = false; with either flag set it runs
 * about 10x slower (256x500 by 500x500 on this project's machine: 3.7 ms plain, 42 ms with either
 * flag). Backpropagation through a dense layer is exactly those two products, dX = dY * W^T and
 * dW = X^T * dY, so they were about 90% of a width-500 MLP's training step. Here the transposed
 * operand is first copied out transposed by the backend's own Transpose kernel (a pass over it, far
 * cheaper than the product), and then the untransposed product runs. The sums are XNNPACK's, in its
 * order, so results differ from tfjs's kernel in the last float32 bits (the test bounds them).
 */
import * as tf from '@tensorflow/tfjs';
import { KernelSwap } from './kernel-swap.js';

const swap = new KernelSwap('BatchMatMul', 'wasm');
/** The wasm backend's Transpose kernel, looked up once when ours is installed. */
let transpose: ((a: KernelArgs) => tf.TensorInfo) | undefined;

interface WasmBackend { disposeData(dataId: unknown): void }
interface MatMulAttrs { transposeA: boolean; transposeB: boolean }
type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

/** perm that swaps the last two axes of a rank-r tensor. */
const lastTwoSwapped = (rank: number) => [...Array.from({ length: rank - 2 }, (_, i) => i), rank - 1, rank - 2];

function batchMatMul(args: KernelArgs): tf.TensorInfo {
  const { transposeA, transposeB } = args.attrs as unknown as MatMulAttrs;
  const run = swap.tfjs.kernelFunc as unknown as (a: KernelArgs) => tf.TensorInfo;
  if (!transposeA && !transposeB) return run(args);
  const backend = args.backend as WasmBackend;
  const made: tf.TensorInfo[] = [];
  const plain = (t: tf.TensorInfo, flag: boolean) => {
    if (!flag) return t;
    const swapped = transpose!({ inputs: { x: t }, backend: args.backend, attrs: { perm: lastTwoSwapped(t.shape.length) } });
    made.push(swapped);
    return swapped;
  };
  try {
    const a = plain(args.inputs.a!, transposeA);
    const b = plain(args.inputs.b!, transposeB);
    return run({ inputs: { a, b }, backend: args.backend, attrs: { ...args.attrs, transposeA: false, transposeB: false } });
  } finally {
    for (const t of made) backend.disposeData(t.dataId);
  }
}

/** Replaces the wasm backend's BatchMatMul; idempotent. Import '@tensorflow/tfjs-backend-wasm' first. */
export function useFastTransposedMatMul(): void {
  if (swap.installed) return;
  const transposeKernel = tf.getKernel('Transpose', 'wasm');
  if (!transposeKernel) throw new Error('tfjs-backend-wasm has no Transpose kernel');
  transpose = transposeKernel.kernelFunc as unknown as (a: KernelArgs) => tf.TensorInfo;
  swap.install(batchMatMul as unknown as tf.KernelFunc);
}

/** Puts tfjs's own kernel back (for tests and benchmarks that compare the two). */
export function restoreTransposedMatMul(): void {
  swap.restore();
}
