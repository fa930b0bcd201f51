import { combine, combineV, hasSimd, term, termsHigh, termsLow } from "./terms";
import { lane1, lanes4 } from "./scaling";

// acc_f64[k] (+)= term(x_k) for k < n ((+): + or, for Max, max; ./terms.ts), x_k read (and scaled, factors at s + 4k) at u + 4k as S says
// (./scaling.ts). Each accumulator gets exactly one add, so the SIMD and scalar builds agree bit for
// bit whatever the step width. `wide` (a constant at every call, folded away) takes 8 lanes per SIMD
// step before the 4-lane ones: faster on V8 across accumulators (Inner), slower across units, where
// 4 lanes per step are used.

/** acc_f64 at [at .. at + 32) (+)= the terms of the 4 f32 lanes of v. */
// @ts-ignore: decorator
@inline function addTerms4<M>(at: usize, v: v128): void {
  v128.store(at, combineV<M>(v128.load(at), termsLow<M>(v)));
  v128.store(at, combineV<M>(v128.load(at, 16), termsHigh<M>(v)), 16);
}

// @ts-ignore: decorator
@inline export function addEach<M, S>(u: usize, n: i32, f: f32, s: usize, acc: usize, p: f64, wide: bool): void {
  let k: i32 = 0;
  if (ASC_FEATURE_SIMD) {
    if (hasSimd<M>()) {
      const fv = f32x4.splat(f);
      if (wide) {
        for (; k + 8 <= n; k += 8) {
          const q = u + (<usize>k << 2);
          const sq = s + (<usize>k << 2);
          const at = acc + (<usize>k << 3);
          addTerms4<M>(at, lanes4<S>(q, fv, sq));
          addTerms4<M>(at + 32, lanes4<S>(q + 16, fv, sq + 16));
        }
      }
      for (; k + 4 <= n; k += 4) addTerms4<M>(acc + (<usize>k << 3), lanes4<S>(u + (<usize>k << 2), fv, s + (<usize>k << 2)));
    }
  }
  for (; k < n; k++) {
    const at = acc + (<usize>k << 3);
    store<f64>(at, combine<M>(load<f64>(at), term<M>(lane1<S>(u + (<usize>k << 2), f, s + (<usize>k << 2)), p)));
  }
}

/** acc_f64 at [at .. at + 32) (+)= the terms of v, then of x (two rows' lanes: two adds, in that order). */
// @ts-ignore: decorator
@inline function addTerms4Pair<M>(at: usize, v: v128, x: v128): void {
  v128.store(at, combineV<M>(combineV<M>(v128.load(at), termsLow<M>(v)), termsLow<M>(x)));
  v128.store(at, combineV<M>(combineV<M>(v128.load(at, 16), termsHigh<M>(v)), termsHigh<M>(x)), 16);
}

/**
 * addEach of two runs u1, u2 (factors f1, f2; S = a one-factor tag) into the same n accumulators in
 * one sweep: acc[k] = (acc[k] (+) term(x1_k)) (+) term(x2_k), the order two addEach calls give, so
 * SIMD and scalar still agree bit for bit; each accumulator is loaded and stored once, not twice.
 */
// @ts-ignore: decorator
@inline export function addEachPair<M, S>(u1: usize, u2: usize, n: i32, f1: f32, f2: f32, acc: usize, p: f64): void {
  let k: i32 = 0;
  if (ASC_FEATURE_SIMD) {
    if (hasSimd<M>()) {
      const fv1 = f32x4.splat(f1);
      const fv2 = f32x4.splat(f2);
      for (; k + 8 <= n; k += 8) {
        const o = <usize>k << 2;
        const at = acc + (<usize>k << 3);
        addTerms4Pair<M>(at, lanes4<S>(u1 + o, fv1, 0), lanes4<S>(u2 + o, fv2, 0));
        addTerms4Pair<M>(at + 32, lanes4<S>(u1 + o + 16, fv1, 0), lanes4<S>(u2 + o + 16, fv2, 0));
      }
      for (; k + 4 <= n; k += 4) {
        const o = <usize>k << 2;
        addTerms4Pair<M>(acc + (<usize>k << 3), lanes4<S>(u1 + o, fv1, 0), lanes4<S>(u2 + o, fv2, 0));
      }
    }
  }
  for (; k < n; k++) {
    const at = acc + (<usize>k << 3);
    const o = <usize>k << 2;
    store<f64>(at, combine<M>(combine<M>(load<f64>(at), term<M>(lane1<S>(u1 + o, f1, 0), p)), term<M>(lane1<S>(u2 + o, f2, 0), p)));
  }
}
