/**
 * Kernels every backend provides. Pointers are byte offsets into the backend's memory;
 * f32 tensors, f64 accumulators, f32 scale vectors. A view argument list is
 * (w, outer, outerStride, count, inner): element (o, i, j) is f32 index  o*outerStride + i*inner + j
 * counted from byte pointer w, and belongs to unit i. Pointers must be naturally aligned
 * (f32 to 4 bytes, f64 to 8) for the 'js' backend; the Wasm builds accept any byte offset.
 */
export interface Kernels {
  /** acc[i] += sum_{o,j} |w(o,i,j)|^p, summed in f64 (no overflow / flush for |w| in [1e-30, 1e30], p <= 10). */
  accumulate(w: number, outer: number, outerStride: number, count: number, inner: number, acc: number, p: number): void;
  /** w(o,i,j) *= s[i]. */
  scale(w: number, outer: number, outerStride: number, count: number, inner: number, s: number): void;
  /**
   * `scale` of this view fused with `accumulate` of another view of the same tensor (modes 0, 1)
   * or of its own units (mode 2 with a = 1, b = count), in one pass:
   * for every element (o,i,j) of the view,
   *   w(o,i,j) = f32(w(o,i,j) * s[i])              (bit for bit what `scale` stores)
   *   acc[idx] += |w(o,i,j)|^p                      (the NEW value, promoted to f64 before the power)
   *   idx = (o / a) % b (mode 0), (j / a) % b (mode 1), (i / a) % b (mode 2)   (integer division; a, b >= 1)
   * s is f32, acc is f64 (b accumulators). Nothing happens when outer, count or inner is < 1.
   */
  scaleAccumulate(
    w: number,
    outer: number,
    outerStride: number,
    count: number,
    inner: number,
    s: number,
    acc: number,
    p: number,
    mode: number,
    a: number,
    b: number,
  ): void;
  /**
   * d[i] = (b[i] / a[i])^(1/(2p)) / sqrt(c) with a = incoming, b = outgoing (f64);
   * d[i] = 1 where a or b is 0 or the ratio is not finite (dead unit). dInv[i] = 1 / d[i]. d, dInv are f32.
   * A d that is finite in f64 but outside the f32 range is stored as Inf / 0, not hidden.
   */
  solveScales(incoming: number, outgoing: number, count: number, p: number, c: number, d: number, dInv: number): void;
  /** sum |w[k]|^p over n contiguous f32, in f64. */
  energy(w: number, n: number, p: number): number;
  /** Index of the first NaN / Inf among n contiguous f32, or -1. */
  firstNonFinite(w: number, n: number): number;
  /** Sets `bytes` bytes at ptr to zero. */
  zero(ptr: number, bytes: number): void;
}

export type BackendName = 'simd' | 'scalar' | 'js';

/** A kernel set with its own linear memory. */
export interface Backend {
  readonly name: BackendName;
  readonly kernels: Kernels;
  /**
   * Makes `bytes` bytes available and returns the 16-byte-aligned pointer of the region.
   * Called once per engine, before any kernel; may replace `buffer`. Successive calls return
   * disjoint regions (bump allocation, never freed); pointer 0 is never returned.
   */
  reserve(bytes: number): number;
  /** The current memory; re-read after `reserve`. */
  readonly buffer: ArrayBuffer;
}
