/**
 * One backend kernel replaced by ours, with tfjs's own kept: to call (for the cases ours leaves to
 * it) and to put back (for tests and benchmarks that compare the two). Used by the wasm kernel
 * replacements (./transposed-matmul.ts, ./fast-tile.ts) and the cpu one (./conv-filter-grad.ts).
 */
import * as tf from '@tensorflow/tfjs';

export class KernelSwap {
  private original: tf.KernelConfig | undefined;

  constructor(readonly kernelName: string, readonly backendName: string) {}

  /** tfjs's kernel; only while ours is installed. */
  get tfjs(): tf.KernelConfig {
    if (!this.original) throw new Error(`${this.kernelName} on ${this.backendName} is not replaced`);
    return this.original;
  }

  get installed(): boolean {
    return !!this.original;
  }

  /** Registers kernelFunc in place of tfjs's kernel (with its setup); idempotent. */
  install(kernelFunc: tf.KernelFunc): void {
    if (this.original) return;
    const original = tf.getKernel(this.kernelName, this.backendName);
    if (!original) throw new Error(`tfjs-backend-${this.backendName} has no ${this.kernelName} kernel to replace (import the backend first)`);
    tf.unregisterKernel(this.kernelName, this.backendName);
    tf.registerKernel({ kernelName: this.kernelName, backendName: this.backendName, setupFunc: original.setupFunc, kernelFunc });
    this.original = original;
  }

  /** Puts tfjs's kernel back. */
  restore(): void {
    if (!this.original) return;
    tf.unregisterKernel(this.kernelName, this.backendName);
    tf.registerKernel(this.original);
    this.original = undefined;
  }
}
