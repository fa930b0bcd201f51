import { CrossMode, MAX_HOST_BYTES, type Backend, type Kernels } from './backend.js';
import { accumulateMax, accumulateScaledMax, energyMax } from './js-max.js';
import { DISPOSE_HINT, disposedError, disposedKernels, formatBytes, memoryError, reason, reservationEnd } from './memory.js';

/** Fresh memory starts here (pointer 0 stays unused, as in the Wasm builds). */
const BASE = 16;

/**
 * An f64 y stored into a Float32Array (rounded to nearest) becomes +-Inf exactly when |y| >= this:
 * the midpoint between the largest f32, 2^128 - 2^104, and 2^128 (a tie goes to the even 2^128).
 */
const F32_OVERFLOW = 2 ** 128 - 2 ** 103;

/** sum_{k<n} |m[k0+k]|^p in f64 (Float32Array reads are already exact f64). */
function sumRun(m: Float32Array, k0: number, n: number, p: number): number {
  let s = 0;
  const end = k0 + n;
  let k = k0;
  if (p === 2) {
    // Two partial sums shorten the add dependency chain.
    let t = 0;
    for (; k + 2 <= end; k += 2) {
      const x = m[k];
      const y = m[k + 1];
      s += x * x;
      t += y * y;
    }
    if (k < end) s += m[k] * m[k];
    s += t;
  } else if (p === 1) {
    let t = 0;
    for (; k + 2 <= end; k += 2) {
      s += Math.abs(m[k]);
      t += Math.abs(m[k + 1]);
    }
    if (k < end) s += Math.abs(m[k]);
    s += t;
  } else {
    for (let k = k0; k < end; k++) s += Math.pow(Math.abs(m[k]), p);
  }
  return s;
}

/** a[a0 + i] += |m[r + i]|^p for i < count (one unit per element: inner = 1). */
function addPowers(m: Float32Array, r: number, count: number, a: Float64Array, a0: number, p: number): void {
  if (p === 2) {
    for (let i = 0; i < count; i++) {
      const x = m[r + i];
      a[a0 + i] += x * x;
    }
  } else if (p === 1) {
    for (let i = 0; i < count; i++) a[a0 + i] += Math.abs(m[r + i]);
  } else {
    for (let i = 0; i < count; i++) a[a0 + i] += Math.pow(Math.abs(m[r + i]), p);
  }
}

/** sum_{k<n} |f32(m[k0+k] * f)|^p in f64: the products `scale` would store (the f64 product of two f32 is exact, fround rounds it once); nothing is stored. */
function scaledSum(m: Float32Array, k0: number, n: number, f: number, p: number): number {
  let s = 0;
  const end = k0 + n;
  if (p === 2) {
    for (let k = k0; k < end; k++) {
      const x = Math.fround(m[k] * f);
      s += x * x;
    }
  } else if (p === 1) {
    for (let k = k0; k < end; k++) s += Math.abs(Math.fround(m[k] * f));
  } else {
    for (let k = k0; k < end; k++) s += Math.pow(Math.abs(Math.fround(m[k] * f)), p);
  }
  return s;
}

/** sum_{i<n} |f32(m[r+i] * m[s0+i])|^p in f64: one row of an inner == 1 view, each unit with its own factor. */
function laneSum(m: Float32Array, r: number, s0: number, n: number, p: number): number {
  let s = 0;
  if (p === 2) {
    for (let i = 0; i < n; i++) {
      const x = Math.fround(m[r + i] * m[s0 + i]);
      s += x * x;
    }
  } else if (p === 1) {
    for (let i = 0; i < n; i++) s += Math.abs(Math.fround(m[r + i] * m[s0 + i]));
  } else {
    for (let i = 0; i < n; i++) s += Math.pow(Math.abs(Math.fround(m[r + i] * m[s0 + i])), p);
  }
  return s;
}

/** ac[a0 + (j % b)] += |f32(m[u+j] * f)|^p for j < n: accumulators that wrap along one unit's run. */
function addWrapped(m: Float32Array, u: number, n: number, f: number, ac: Float64Array, a0: number, b: number, p: number): void {
  const end = u + n;
  const yEnd = a0 + b;
  for (let k = u, y = a0; k < end; k++) {
    const x = Math.abs(Math.fround(m[k] * f));
    ac[y] += p === 2 ? x * x : p === 1 ? x : Math.pow(x, p);
    if (++y === yEnd) y = a0;
  }
}

/**
 * The kernels of assembly/ in plain TypeScript over one growable ArrayBuffer: the fallback
 * where Wasm is unavailable, and the 'js' row of the benchmark. Pointers must be naturally
 * aligned (f32 data to 4 bytes, f64 accumulators to 8); the Wasm builds also accept unaligned ones.
 */
export function createJsBackend(): Backend {
  let buffer = new ArrayBuffer(0);
  let u8 = new Uint8Array(buffer);
  let f32 = new Float32Array(buffer);
  let f64 = new Float64Array(buffer);
  let top = BASE;

  const kernels: Kernels = {
    accumulate(w, outer, outerStride, count, inner, acc, p) {
      if (p === Infinity) return accumulateMax(f32, f64, w, outer, outerStride, count, inner, acc);
      const a0 = acc >>> 3;
      for (let o = 0; o < outer; o++) {
        const row = (w >>> 2) + o * outerStride;
        if (inner === 1) addPowers(f32, row, count, f64, a0, p);
        else if (inner > 1) for (let i = 0, u = row; i < count; i++, u += inner) f64[a0 + i] += sumRun(f32, u, inner, p);
      }
    },

    scale(w, outer, outerStride, count, inner, s) {
      // Float32Array stores round the exact f64 product once: the same result as one f32 multiply.
      const m = f32;
      const w0 = w >>> 2;
      const s0 = s >>> 2;
      if (inner === 1) {
        for (let o = 0; o < outer; o++) {
          const r = w0 + o * outerStride;
          for (let i = 0; i < count; i++) m[r + i] *= m[s0 + i];
        }
      } else if (inner > 1) {
        for (let o = 0; o < outer; o++) {
          let u = w0 + o * outerStride;
          for (let i = 0; i < count; i++, u += inner) {
            const f = m[s0 + i];
            const end = u + inner;
            for (let k = u; k < end; k++) m[k] *= f;
          }
        }
      }
    },

    accumulateScaled(w, outer, outerStride, count, inner, s, acc, p, mode, a, b) {
      if (outer < 1 || count < 1 || inner < 1) return;
      if (p === Infinity) return accumulateScaledMax(f32, f64, w, outer, outerStride, count, inner, s, acc, mode, a, b);
      const m = f32;
      const ac = f64;
      const w0 = w >>> 2;
      const s0 = s >>> 2;
      const a0 = acc >>> 3;
      if (mode === CrossMode.unit && inner === 1 && a === 1 && b >= count) {
        // The view's own units, contiguous: acc index i.
        for (let o = 0; o < outer; o++) {
          for (let i = 0, r = w0 + o * outerStride; i < count; i++) {
            const x = Math.abs(Math.fround(m[r + i] * m[s0 + i]));
            ac[a0 + i] += p === 2 ? x * x : p === 1 ? x : Math.pow(x, p);
          }
        }
      } else if (mode === CrossMode.unit) {
        // acc index (i / a) % b: each unit's run sums into its accumulator.
        for (let o = 0; o < outer; o++) {
          for (let i = 0, u = w0 + o * outerStride; i < count; i++, u += inner) ac[a0 + (Math.floor(i / a) % b)] += scaledSum(m, u, inner, m[s0 + i], p);
        }
      } else if (mode === CrossMode.outer) {
        // acc index depends on o only: one sum per row.
        for (let o = 0; o < outer; o++) {
          const r = w0 + o * outerStride;
          let sum = 0;
          if (inner === 1) sum = laneSum(m, r, s0, count, p);
          else for (let i = 0, u = r; i < count; i++, u += inner) sum += scaledSum(m, u, inner, m[s0 + i], p);
          ac[a0 + (Math.floor(o / a) % b)] += sum;
        }
      } else if (a === 1 && b > 1) {
        // idx = j % b: walk each run with a wrapping accumulator index.
        for (let o = 0; o < outer; o++) {
          for (let i = 0, u = w0 + o * outerStride; i < count; i++, u += inner) addWrapped(m, u, inner, m[s0 + i], ac, a0, b, p);
        }
      } else {
        // idx = (j / a) % b: runs of a consecutive j share an accumulator (b == 1: one run per unit).
        const run = b === 1 ? inner : a;
        for (let o = 0; o < outer; o++) {
          for (let i = 0, u = w0 + o * outerStride; i < count; i++, u += inner) {
            const f = m[s0 + i];
            for (let j0 = 0, y = 0; j0 < inner; j0 += run) {
              ac[a0 + y] += scaledSum(m, u + j0, Math.min(run, inner - j0), f, p);
              if (++y === b) y = 0;
            }
          }
        }
      }
    },

    scaleBoth(w, outer, outerStride, count, inner, s, g, a, b) {
      if (outer < 1 || count < 1 || inner < 1) return 0;
      const m = f32;
      const w0 = w >>> 2;
      const s0 = s >>> 2;
      const g0 = g >>> 2;
      // `m[k] *= f` stores f32(y) of the exact f64 product y and yields y: the stored value is NaN or
      // +-Inf exactly when y is NaN (which fails the compare) or |y| >= F32_OVERFLOW.
      let bad = 0;
      for (let o = 0; o < outer; o++) {
        const h = m[g0 + (Math.floor(o / a) % b)];
        const r = w0 + o * outerStride;
        if (inner === 1) {
          for (let i = 0; i < count; i++) {
            const y = (m[r + i] *= Math.fround(m[s0 + i] * h));
            if (!(Math.abs(y) < F32_OVERFLOW)) bad = 1;
          }
        } else {
          for (let i = 0, u = r; i < count; i++, u += inner) {
            const f = Math.fround(m[s0 + i] * h);
            for (let k = u, end = u + inner; k < end; k++) {
              const y = (m[k] *= f);
              if (!(Math.abs(y) < F32_OVERFLOW)) bad = 1;
            }
          }
        }
      }
      return bad;
    },

    solve(sums, count, p, c, omega, logSigma, sigma, sigmaInv, d, dInv, energy) {
      // Same f64 formula as assembly/solve.ts, three transcendentals per unit (engine/backend.ts has the spec).
      const m = f32;
      const a64 = f64;
      const q0 = sums >>> 3;
      const l0 = logSigma >>> 3;
      const [is, iv, id, ii] = [sigma >>> 2, sigmaInv >>> 2, d >>> 2, dInv >>> 2];
      const e = p === Infinity ? 0.5 : 1 / (2 * p);
      const h = Math.log(c) / 2;
      let en = 0;
      for (let i = 0; i < count; i++) {
        const af = a64[q0 + i];
        const bf = a64[q0 + count + i];
        const A = af + a64[q0 + 2 * count + i];
        const B = bf + a64[q0 + 3 * count + i];
        const u = a64[l0 + i];
        let t = u;
        if (A > 0 && B > 0) {
          const r = B / A;
          const x = e * (r >= 2.2250738585072014e-308 && r < Infinity ? Math.log(r) : Math.log(B) - Math.log(A)) - h;
          if (Number.isFinite(x)) t = x;
        }
        const n = omega === 1 ? t : u + omega * (t - u);
        a64[l0 + i] = n;
        const E = Math.exp(n);
        const D = Math.exp(n - u);
        m[is + i] = E;
        m[iv + i] = 1 / E;
        m[id + i] = D;
        m[ii + i] = 1 / D;
        if (p !== Infinity) {
          const P = p === 2 ? E * E : p === 1 ? E : Math.exp(p * n);
          en += P * af + bf / P;
        }
      }
      a64[energy >>> 3] = en;
    },

    energy(w, n, p) {
      return p === Infinity ? energyMax(f32, w, n) : sumRun(f32, w >>> 2, n, p);
    },

    firstNonFinite(w, n) {
      const m = f32;
      const w0 = w >>> 2;
      for (let k = 0; k < n; k++) {
        const x = m[w0 + k];
        if (x - x !== 0) return k; // NaN - NaN and Inf - Inf are NaN
      }
      return -1;
    },

    zero(ptr, bytes) {
      u8.fill(0, ptr, ptr + bytes);
    },

    fill(ptr, n, x) {
      f32.fill(x, ptr >>> 2, (ptr >>> 2) + n);
    },

    copy(dst, src, bytes) {
      u8.copyWithin(dst, src, src + bytes);
    },
  };

  let live = true;
  let current: Kernels = kernels;
  const dead = (): never => {
    throw disposedError("the 'js' backend");
  };

  return {
    name: 'js',
    get kernels(): Kernels {
      return current;
    },
    get buffer(): ArrayBuffer {
      return live ? buffer : dead();
    },
    available(): number {
      // Pointers are u32 (the kernels index with >>> 2), as in the Wasm builds.
      return live ? MAX_HOST_BYTES - top : 0;
    },
    reserve(bytes: number): number {
      if (!live) dead();
      const ptr = top;
      const end = reservationEnd(top, bytes, 'js');
      if (end > buffer.byteLength) {
        let next: ArrayBuffer;
        try {
          next = new ArrayBuffer(end);
        } catch (e) {
          throw memoryError(`enorm: cannot allocate ${formatBytes(end)} of engine memory (${reason(e)}); ${DISPOSE_HINT}`);
        }
        new Uint8Array(next).set(u8);
        buffer = next;
        u8 = new Uint8Array(buffer);
        f32 = new Float32Array(buffer);
        f64 = new Float64Array(buffer);
      }
      top = end;
      return ptr;
    },
    dispose(): void {
      if (!live) return;
      live = false;
      current = disposedKernels("the 'js' backend");
      buffer = new ArrayBuffer(0);
      u8 = new Uint8Array(buffer);
      f32 = new Float32Array(buffer);
      f64 = new Float64Array(buffer);
    },
  };
}
