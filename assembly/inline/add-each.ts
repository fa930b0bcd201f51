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
