// |x|^p in f64 for one f32 (or two f64 lanes), and its sum over a contiguous run.
// Each f32 is promoted to f64 BEFORE the power: |x| in [1e-30, 1e30], p <= 10 stays in f64 range.
// The term kind is a compile-time type tag, so every kernel instance is specialised
// (no per-element branch on p):  Square: x*x (p == 2),  Abs: |x| (p == 1),  Pow: Math.pow(|x|, p).

// @ts-ignore: decorator
@final export abstract class Square {}
// @ts-ignore: decorator
@final export abstract class Abs {}
// @ts-ignore: decorator
@final export abstract class Pow {}

/** True for the cheap tags, which have a SIMD form (Pow stays scalar: Math.pow dominates). */
// @ts-ignore: decorator
@inline export function hasSimd<M>(): bool {
  return idof<M>() != idof<Pow>();
}

// @ts-ignore: decorator
@inline export function term<M>(x: f32, p: f64): f64 {
  const y = <f64>x;
  if (idof<M>() == idof<Square>()) return y * y;
  if (idof<M>() == idof<Abs>()) return Math.abs(y);
  return Math.pow(Math.abs(y), p);
}

/** term on two f64 lanes (Square, Abs only). */
// @ts-ignore: decorator
@inline export function termV<M>(v: v128): v128 {
  if (idof<M>() == idof<Square>()) return f64x2.mul(v, v);
  return f64x2.abs(v);
}

/** sum_{k<n} |u[k]|^p over n contiguous f32 at byte pointer u. */
// @ts-ignore: decorator
@inline export function sumTerms<M>(u: usize, n: i32, p: f64): f64 {
  let s: f64 = 0;
  let k: i32 = 0;
  if (ASC_FEATURE_SIMD) {
    if (hasSimd<M>()) {
      // 8 f32 per step into four f64x2 partial sums (independent add chains).
      let s0 = f64x2.splat(0);
      let s1 = f64x2.splat(0);
      let s2 = f64x2.splat(0);
      let s3 = f64x2.splat(0);
      for (; k + 8 <= n; k += 8) {
        const q = u + (<usize>k << 2);
        const v = v128.load(q);
        const x = v128.load(q, 16);
        s0 = f64x2.add(s0, termV<M>(f64x2.promote_low_f32x4(v)));
        s1 = f64x2.add(s1, termV<M>(f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 2, 3))));
        s2 = f64x2.add(s2, termV<M>(f64x2.promote_low_f32x4(x)));
        s3 = f64x2.add(s3, termV<M>(f64x2.promote_low_f32x4(v128.shuffle<f32>(x, x, 2, 3, 2, 3))));
      }
      if (k + 4 <= n) {
        const v = v128.load(u + (<usize>k << 2));
        s0 = f64x2.add(s0, termV<M>(f64x2.promote_low_f32x4(v)));
        s1 = f64x2.add(s1, termV<M>(f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 2, 3))));
        k += 4;
      }
      const t = f64x2.add(f64x2.add(s0, s1), f64x2.add(s2, s3));
      s = f64x2.extract_lane(t, 0) + f64x2.extract_lane(t, 1);
    }
  } else {
    if (hasSimd<M>()) {
      // Scalar build: four partial sums, same reason.
      let s1: f64 = 0;
      let s2: f64 = 0;
      let s3: f64 = 0;
      for (; k + 4 <= n; k += 4) {
        const q = u + (<usize>k << 2);
        s += term<M>(load<f32>(q), p);
        s1 += term<M>(load<f32>(q, 4), p);
        s2 += term<M>(load<f32>(q, 8), p);
        s3 += term<M>(load<f32>(q, 12), p);
      }
      s = (s + s1) + (s2 + s3);
    }
  }
  for (; k < n; k++) s += term<M>(load<f32>(u + (<usize>k << 2)), p);
  return s;
}
