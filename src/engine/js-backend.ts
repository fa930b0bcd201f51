import { CrossMode, MAX_HOST_BYTES, type Backend, type Kernels } from './backend.js';
import { accumulateMax, energyMax, scaleAccumulateMax } from './js-max.js';
import { DISPOSE_HINT, disposedError, disposedKernels, formatBytes, memoryError, reason, reservationEnd } from './memory.js';

/** Fresh memory starts here (pointer 0 stays unused, as in the Wasm builds). */
const BASE = 16;

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

/**
 * Scales m[k0..k0+n) by f in place (one f32 rounding: the f64 product of two f32 is exact) and
 * returns sum |new|^p in f64.
 */
function scaledRun(m: Float32Array, k0: number, n: number, f: number, p: number): number {
  let s = 0;
  const end = k0 + n;
  if (p === 2) {
    for (let k = k0; k < end; k++) {
      const x = Math.fround(m[k] * f);
      m[k] = x;
      s += x * x;
    }
  } else if (p === 1) {
    for (let k = k0; k < end; k++) {
      const x = Math.fround(m[k] * f);
      m[k] = x;
      s += Math.abs(x);
    }
  } else {
    for (let k = k0; k < end; k++) {
      const x = Math.fround(m[k] * f);
      m[k] = x;
      s += Math.pow(Math.abs(x), p);
    }
  }
  return s;
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

    scaleAccumulate(w, outer, outerStride, count, inner, s, acc, p, mode, a, b) {
      if (outer < 1 || count < 1 || inner < 1) return;
      if (p === Infinity) return scaleAccumulateMax(f32, f64, w, outer, outerStride, count, inner, s, acc, mode, a, b);
      const m = f32;
      const ac = f64;
      const w0 = w >>> 2;
      const s0 = s >>> 2;
      const a0 = acc >>> 3;
      if (mode === CrossMode.unit) {
        // acc index (i / a) % b: each unit's run sums into its accumulator.
        for (let o = 0; o < outer; o++) {
          for (let i = 0, u = w0 + o * outerStride; i < count; i++, u += inner) {
            ac[a0 + (Math.floor(i / a) % b)] += scaledRun(m, u, inner, m[s0 + i], p);
          }
        }
      } else if (mode === CrossMode.outer) {
        // acc index depends on o only: one sum per row.
        for (let o = 0; o < outer; o++) {
          const r = w0 + o * outerStride;
          let sum = 0;
          if (inner === 1) {
            if (p === 2) {
              for (let i = 0; i < count; i++) {
                const x = Math.fround(m[r + i] * m[s0 + i]);
                m[r + i] = x;
                sum += x * x;
              }
            } else if (p === 1) {
              for (let i = 0; i < count; i++) {
                const x = Math.fround(m[r + i] * m[s0 + i]);
                m[r + i] = x;
                sum += Math.abs(x);
              }
            } else {
              for (let i = 0; i < count; i++) {
                const x = Math.fround(m[r + i] * m[s0 + i]);
                m[r + i] = x;
                sum += Math.pow(Math.abs(x), p);
              }
            }
          } else {
            for (let i = 0, u = r; i < count; i++, u += inner) sum += scaledRun(m, u, inner, m[s0 + i], p);
          }
          ac[a0 + (Math.floor(o / a) % b)] += sum;
        }
      } else if (a === 1 && b > 1) {
        // idx = j % b: walk each run with a wrapping accumulator index.
        for (let o = 0; o < outer; o++) {
          let u = w0 + o * outerStride;
          for (let i = 0; i < count; i++, u += inner) {
            const f = m[s0 + i];
            const end = u + inner;
            let y = a0;
            const yEnd = a0 + b;
            if (p === 2) {
              for (let k = u; k < end; k++) {
                const x = Math.fround(m[k] * f);
                m[k] = x;
                ac[y] += x * x;
                if (++y === yEnd) y = a0;
              }
            } else if (p === 1) {
              for (let k = u; k < end; k++) {
                const x = Math.fround(m[k] * f);
                m[k] = x;
                ac[y] += Math.abs(x);
                if (++y === yEnd) y = a0;
              }
            } else {
              for (let k = u; k < end; k++) {
                const x = Math.fround(m[k] * f);
                m[k] = x;
                ac[y] += Math.pow(Math.abs(x), p);
                if (++y === yEnd) y = a0;
              }
            }
          }
        }
      } else {
        // idx = (j / a) % b: runs of a consecutive j share an accumulator (b == 1: one run per unit).
        const run = b === 1 ? inner : a;
        for (let o = 0; o < outer; o++) {
          let u = w0 + o * outerStride;
          for (let i = 0; i < count; i++, u += inner) {
            const f = m[s0 + i];
            let y = 0;
            for (let j0 = 0; j0 < inner; j0 += run) {
              ac[a0 + y] += scaledRun(m, u + j0, Math.min(run, inner - j0), f, p);
              if (++y === b) y = 0;
            }
          }
        }
      }
    },

    solveScales(incoming, outgoing, count, p, c, d, dInv) {
      // Same rules as assembly/solve.ts.
      const m = f32;
      const a64 = f64;
      const ia = incoming >>> 3;
      const ib = outgoing >>> 3;
      const id = d >>> 2;
      const ii = dInv >>> 2;
      const e = 1 / (2 * p);
      const sc = Math.sqrt(c);
      for (let i = 0; i < count; i++) {
        const a = a64[ia + i];
        const b = a64[ib + i];
        let x = 1;
        if (a > 0 && b > 0) {
          const t = (p === Infinity ? Math.sqrt(b / a) : Math.pow(b / a, e)) / sc;
          if (Number.isFinite(t) && t > 0) x = t;
        }
        m[id + i] = x;
        m[ii + i] = 1 / x;
      }
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
