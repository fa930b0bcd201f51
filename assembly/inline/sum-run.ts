import { combine, combineV, hasSimd, term, termsHigh, termsLow } from "./terms";
import { lane1, lanes4 } from "./scaling";

// sum_{k<n} term(x_k) (combined by + or, for Max, by max: ./terms.ts) over n contiguous f32 at u, x_k read (and scaled, factors at s + 4k) as S says
// (./scaling.ts). Four partial sums (independent add chains), always in this order:
//   SIMD:   s0 += lanes 0,1 and s1 += lanes 2,3 of each even block of 4; s2, s3 the same of each odd block;
//           then (s0 + s1) + (s2 + s3), lane 0 + lane 1.
//   Scalar: lane r of each block of 4 into partial sum r; then (s0 + s1) + (s2 + s3).
// The rest (n % 8 beyond one block of 4; n % 4 in the scalar build; Pow, every element) follows one by one.

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
      let s1: f64 = 0;
      let s2: f64 = 0;
      let s3: f64 = 0;
      for (; k + 4 <= n; k += 4) {
        const q = u + (<usize>k << 2);
        const sq = s + (<usize>k << 2);
        sum = combine<M>(sum, term<M>(lane1<S>(q, f, sq), p));
        s1 = combine<M>(s1, term<M>(lane1<S>(q + 4, f, sq + 4), p));
        s2 = combine<M>(s2, term<M>(lane1<S>(q + 8, f, sq + 8), p));
        s3 = combine<M>(s3, term<M>(lane1<S>(q + 12, f, sq + 12), p));
      }
      sum = combine<M>(combine<M>(sum, s1), combine<M>(s2, s3));
    }
  }
  for (; k < n; k++) sum = combine<M>(sum, term<M>(lane1<S>(u + (<usize>k << 2), f, s + (<usize>k << 2)), p));
  return sum;
}
