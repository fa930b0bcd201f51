/**
 * Which coordinate of an element (o, i, j) of the walked view picks its accumulator in
 * `accumulateScaled`:  idx = (k / a) % b  with  k = o (outer), j (inner) or i (unit: the view's own units).
 * The numbers are defined once in assembly/cross-mode.ts (AssemblyScript cannot import TS) and
 * mirrored here; test/assembly/cross-mode.test.ts checks that the two agree.
 */
export const CrossMode = { outer: 0, inner: 1, unit: 2 } as const;
export type CrossMode = (typeof CrossMode)[keyof typeof CrossMode];

/**
 * The kernels one ENorm cycle runs; every backend provides them. Pointers are byte offsets into the backend's memory;
 * f32 tensors, 8-byte accumulators (f64 on the host backends; f32 in the first half on WebGPU, as WGSL
 * has no f64), f32 scale vectors. A view argument list is
 * (w, outer, outerStride, count, inner): element (o, i, j) is f32 index  o*outerStride + i*inner + j
 * counted from byte pointer w, and belongs to unit i. Pointers must be naturally aligned
 * (f32 to 4 bytes, f64 to 8) for the 'js' backend; the Wasm builds accept any byte offset.
 */
export interface CycleKernels {
  /**
   * acc[i] += sum_{o,j} |w(o,i,j)|^p, summed in f64 (no overflow / flush for |w| in [1e-30, 1e30], p <= 10).
   * p = Infinity (range equalisation): acc[i] = max(acc[i], max_{o,j} |w(o,i,j)|), exact. Every
   * kernel below that sums |w|^p takes the max instead when p is Infinity.
   */
  accumulate(w: number, outer: number, outerStride: number, count: number, inner: number, acc: number, p: number): void;
  /** w(o,i,j) *= s[i]. */
  scale(w: number, outer: number, outerStride: number, count: number, inner: number, s: number): void;
  /**
   * Read-only weighted sums (deferred scales, docs/ALGORITHM.md section 3b): for every element
   * (o,i,j) of the view
   *   x = f32(w(o,i,j) * s[i])                      (the product `scale` would store; nothing is stored)
   *   acc[idx] += |x|^p                             (x promoted to f64 before the power; max |x| for p = Infinity)
   *   idx = (o / a) % b (outer), (j / a) % b (inner), (i / a) % b (unit)   (integer division; a, b >= 1)
   * `mode` is a CrossMode value (typed number so that callers may loop over the modes).
   * s is f32, acc is f64 (b accumulators). Nothing happens when outer, count or inner is < 1.
   */
  accumulateScaled(
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
   * Materialises pending scales: for every element (o,i,j) of the view
   *   w(o,i,j) = f32(w(o,i,j) * f32(s[i] * g[(o / a) % b]))      (a, b >= 1; s, g f32)
   * in one pass. Host backends return 1 when any stored value is NaN or +-Inf, else 0 (the
   * finiteness check fused into the pass); device backends record the pass and return nothing.
   * Nothing happens (0) when outer, count or inner is < 1.
   */
  scaleBoth(w: number, outer: number, outerStride: number, count: number, inner: number, s: number, g: number, a: number, b: number): number | void;
  /**
   * One group step on pending scales, for `count` units. `sums` is an f64 block of 4 * count:
   * [Af | Bf | Ao | Bo], the incoming (A) and outgoing (B) sums of every unit without its own
   * pending scale sigma, split into the part that is final for the energy (f) and the rest (o).
   * `logSigma` holds u = log sigma per unit (f64): the exact pending scale; sigma and sigmaInv are
   * its f32 copies, which the other kernels read. In f64:
   *   A = Af[i] + Ao[i],  B = Bf[i] + Bo[i],  u = logSigma[i]
   *   t = (log B - log A) / (2p) - log(c) / 2      (p = Infinity: (log B - log A) / 2 - log(c) / 2)
   *   t = u where A or B is not > 0, or t is not finite       (dead unit: no move)
   *   n = t when omega == 1, else u + omega (t - u)           (over-relaxation, in log scale)
   *   logSigma[i] = n, sigma[i] = f32(e^n), sigmaInv[i] = f32(e^-n), d[i] = f32(e^(n-u)), dInv[i] = f32(e^(u-n))
   *   energy (one f64) = sum_i e^(pn) Af[i] + e^(-pn) Bf[i]   for finite p; 0 for p = Infinity.
   * e^t is the plain cycle's sigma * d for the current weights (their sums are sigma^p A and
   * sigma^-p B; docs/ALGORITHM.md 3b). A value outside the f32 range is stored as Inf / 0, not hidden.
   * Device backends may keep logSigma in f32 and another base (WGSL has no f64), and leave
   * `energy` unwritten.
   */
  solve(
    sums: number,
    count: number,
    p: number,
    c: number,
    omega: number,
    logSigma: number,
    sigma: number,
    sigmaInv: number,
    d: number,
    dInv: number,
    energy: number,
  ): void;
  /** Sets `bytes` bytes at ptr to zero. */
  zero(ptr: number, bytes: number): void;
  /** Sets the n f32 at ptr to x. */
  fill(ptr: number, n: number, x: number): void;
  /** Copies `bytes` bytes (a multiple of 4) from src to dst; the two regions do not overlap. */
  copy(dst: number, src: number, bytes: number): void;
}

/** Cycle kernels plus the synchronous readers of a backend whose memory the host can see. */
export interface Kernels extends CycleKernels {
  /** As CycleKernels.scaleBoth, returning the finiteness flag: 1 when a stored value is NaN or +-Inf, else 0. */
  scaleBoth(w: number, outer: number, outerStride: number, count: number, inner: number, s: number, g: number, a: number, b: number): number;
  /** sum |w[k]|^p over n contiguous f32, in f64 (max |w[k]| for p = Infinity). */
  energy(w: number, n: number, p: number): number;
  /** Index of the first NaN / Inf among n contiguous f32, or -1. */
  firstNonFinite(w: number, n: number): number;
}

export type BackendName = 'simd' | 'scalar' | 'js';

/**
 * Host memory is addressed by u32 byte pointers (wasm32, and the 'js' backend's `>>> 2` indexing):
 * at most 2^32 bytes, of which pointer 0 and the Wasm builds' static data are not handed out.
 */
export const MAX_HOST_BYTES = 2 ** 32;

/** A kernel set with its own linear memory, which the host reads and writes directly. */
export interface Backend {
  readonly name: BackendName;
  /** The kernels; read after `dispose()`, a set whose every call throws E_STATE. */
  readonly kernels: Kernels;
  /**
   * Makes `bytes` bytes available and returns the 16-byte-aligned pointer of the region.
   * Called once per engine, before any kernel; may replace `buffer`. Successive calls return
   * disjoint regions (bump allocation, never freed); pointer 0 is never returned. Every pointer
   * and region end is below 2^32. Throws E_MEMORY (nothing reserved) when `bytes` exceeds
   * `available()` or the memory cannot grow.
   */
  reserve(bytes: number): number;
  /** The most bytes one `reserve` can still hand out (the 4 GiB address space less what is in use). */
  available(): number;
  /** The current memory; re-read after `reserve`. Throws E_STATE after `dispose()`. */
  readonly buffer: ArrayBuffer;
  /**
   * Gives the memory back (a Wasm instance returns to a small pool that the next backend of its
   * kind reuses, zeroed). Idempotent; afterwards `reserve`, `buffer` and the kernels read from
   * `kernels` throw E_STATE.
   */
  dispose(): void;
}

/**
 * A kernel set whose memory lives on a device (a GPU): kernel calls are recorded and run later,
 * and nothing can be read back synchronously. The engine replays its cycle schedules on it
 * unchanged; engine/webgpu/step.ts (DeviceStep) moves the tensors in and out and checks them.
 */
export interface DeviceBackend {
  readonly name: 'webgpu';
  readonly kernels: CycleKernels;
  /** As Backend.reserve. */
  reserve(bytes: number): number;
}
