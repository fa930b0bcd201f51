/**
 * The p = Infinity (range equalisation) kernels of the 'js' backend: the p-sum kernels of
 * js-backend.ts with every `acc += |w|^p` replaced by `acc = max(acc, |w|)`. A max is exact and
 * order-free, so these walk each view in its plain (o, i, j) order and still agree bit for bit with
 * the Wasm builds, whatever order those reduce in. Arguments as in engine/backend.ts, with the
 * memory passed as its f32 and f64 views (word indices = byte pointer >>> 2, >>> 3).
 */
import { CrossMode } from './backend.js';

/** acc[i] = max(acc[i], max_{o,j} |w(o,i,j)|). */
export function accumulateMax(m: Float32Array, ac: Float64Array, w: number, outer: number, outerStride: number, count: number, inner: number, acc: number): void {
  const w0 = w >>> 2;
  const a0 = acc >>> 3;
  for (let o = 0; o < outer; o++) {
    for (let i = 0, u = w0 + o * outerStride; i < count; i++, u += inner) {
      let x = ac[a0 + i];
      for (let k = u; k < u + inner; k++) x = Math.max(x, Math.abs(m[k]));
      ac[a0 + i] = x;
    }
  }
}

/**
 * acc[idx] = max(acc[idx], |f32(w(o,i,j) * s[i])|) with idx = (k / a) % b, k = o (outer), j (inner)
 * or i (unit): `accumulateScaled` for p = Infinity. Reads only.
 */
export function accumulateScaledMax(
  m: Float32Array, ac: Float64Array, w: number, outer: number, outerStride: number, count: number, inner: number,
  s: number, acc: number, mode: number, a: number, b: number,
): void {
  const w0 = w >>> 2;
  const s0 = s >>> 2;
  const a0 = acc >>> 3;
  const slot = (k: number) => a0 + (Math.floor(k / a) % b);
  for (let o = 0; o < outer; o++) {
    for (let i = 0, u = w0 + o * outerStride; i < count; i++, u += inner) {
      const f = m[s0 + i];
      for (let j = 0; j < inner; j++) {
        const y = slot(mode === CrossMode.outer ? o : mode === CrossMode.inner ? j : i);
        ac[y] = Math.max(ac[y], Math.abs(Math.fround(m[u + j] * f)));
      }
    }
  }
}

/** max_{k<n} |w[k]| (0 for n = 0). */
export function energyMax(m: Float32Array, w: number, n: number): number {
  let x = 0;
  for (let k = w >>> 2, end = (w >>> 2) + n; k < end; k++) x = Math.max(x, Math.abs(m[k]));
  return x;
}
