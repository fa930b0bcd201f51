import { combine, combineV, hasSimd, term, termsHigh, termsLow } from "./terms";
import { lane1, lanes4 } from "./scaling";

// sum_{k<n} term(x_k) (combined by + or, for Max, by max: ./terms.ts) over n contiguous f32 at u, x_k read (and scaled, factors at s + 4k) as S says
// (./scaling.ts). Eight partial sums (independent add chains), in the same order in both builds, so
// that they agree bit for bit: r_m takes element k + m of each block of 8 (the SIMD build keeps
// r0..r7 as the two lanes of s0..s3); one last block of 4 goes to r0..r3; then
//   ((r0 + r2) + (r4 + r6)) + ((r1 + r3) + (r5 + r7)).
// The rest (n % 4; Pow, every element) follows one by one.

// @ts-ignore: decorator
@inline export function sumRun<M, S>(u: usize, n: i32, f: f32, s: usize, p: f64): f64 {
  let sum: f64 = 0;
  let k: i32 = 0;
  if (ASC_FEATURE_SIMD) {
    if (hasSimd<M>()) {
      const fv = f32x4.splat(f);
      let s0 = f64x2.splat(0);
      let s1 = f64x2.splat(0);
      let s2 = f64x2.splat(0);
      let s3 = f64x2.splat(0);
      for (; k + 8 <= n; k += 8) {
        const q = u + (<usize>k << 2);
        const sq = s + (<usize>k << 2);
        const v = lanes4<S>(q, fv, sq);
        const x = lanes4<S>(q + 16, fv, sq + 16);
        s0 = combineV<M>(s0, termsLow<M>(v));
        s1 = combineV<M>(s1, termsHigh<M>(v));
        s2 = combineV<M>(s2, termsLow<M>(x));
        s3 = combineV<M>(s3, termsHigh<M>(x));
      }
      if (k + 4 <= n) {
        const v = lanes4<S>(u + (<usize>k << 2), fv, s + (<usize>k << 2));
        s0 = combineV<M>(s0, termsLow<M>(v));
        s1 = combineV<M>(s1, termsHigh<M>(v));
        k += 4;
      }
      const t = combineV<M>(combineV<M>(s0, s1), combineV<M>(s2, s3));
      sum = combine<M>(f64x2.extract_lane(t, 0), f64x2.extract_lane(t, 1));
    }
  } else {
    if (hasSimd<M>()) {
      // The SIMD order, lane for lane: r0..r7 are the lanes of s0..s3 above.
      let r0: f64 = 0, r1: f64 = 0, r2: f64 = 0, r3: f64 = 0, r4: f64 = 0, r5: f64 = 0, r6: f64 = 0, r7: f64 = 0;
      for (; k + 8 <= n; k += 8) {
        const q = u + (<usize>k << 2);
        const sq = s + (<usize>k << 2);
        r0 = combine<M>(r0, term<M>(lane1<S>(q, f, sq), p));
        r1 = combine<M>(r1, term<M>(lane1<S>(q + 4, f, sq + 4), p));
        r2 = combine<M>(r2, term<M>(lane1<S>(q + 8, f, sq + 8), p));
        r3 = combine<M>(r3, term<M>(lane1<S>(q + 12, f, sq + 12), p));
        r4 = combine<M>(r4, term<M>(lane1<S>(q + 16, f, sq + 16), p));
        r5 = combine<M>(r5, term<M>(lane1<S>(q + 20, f, sq + 20), p));
        r6 = combine<M>(r6, term<M>(lane1<S>(q + 24, f, sq + 24), p));
        r7 = combine<M>(r7, term<M>(lane1<S>(q + 28, f, sq + 28), p));
      }
      if (k + 4 <= n) {
        const q = u + (<usize>k << 2);
        const sq = s + (<usize>k << 2);
        r0 = combine<M>(r0, term<M>(lane1<S>(q, f, sq), p));
        r1 = combine<M>(r1, term<M>(lane1<S>(q + 4, f, sq + 4), p));
        r2 = combine<M>(r2, term<M>(lane1<S>(q + 8, f, sq + 8), p));
        r3 = combine<M>(r3, term<M>(lane1<S>(q + 12, f, sq + 12), p));
        k += 4;
      }
      sum = combine<M>(combine<M>(combine<M>(r0, r2), combine<M>(r4, r6)), combine<M>(combine<M>(r1, r3), combine<M>(r5, r7)));
    }
  }
  for (; k < n; k++) sum = combine<M>(sum, term<M>(lane1<S>(u + (<usize>k << 2), f, s + (<usize>k << 2)), p));
  return sum;
}
