// |x|^p in f64 for one f32 lane, or for two f32 lanes of a v128 at once.
// Each f32 is promoted to f64 BEFORE the power: |x| in [1e-30, 1e30], p <= 10 stays in f64 range.
// The term kind is a compile-time type tag, so every kernel instance is specialised
// (no per-element branch on p):  Square: x*x (p == 2),  Abs: |x| (p == 1),  Pow: Math.pow(|x|, p),
// Max: |x| (p == Infinity, range equalisation). The tag also says how terms combine (`combine`):
// by + for the p-sums, by max for Max. Max is exact, so any order of combining gives the same bits.

// @ts-ignore: decorator
@final export abstract class Square {}
// @ts-ignore: decorator
@final export abstract class Abs {}
// @ts-ignore: decorator
@final export abstract class Pow {}
// @ts-ignore: decorator
@final export abstract class Max {}

/** True for the cheap tags, which have a SIMD form (Pow stays scalar: Math.pow dominates). */
// @ts-ignore: decorator
@inline export function hasSimd<M>(): bool {
  return idof<M>() != idof<Pow>();
}

// @ts-ignore: decorator
@inline export function term<M>(x: f32, p: f64): f64 {
  const y = <f64>x;
  if (idof<M>() == idof<Square>()) return y * y;
  if (idof<M>() == idof<Abs>() || idof<M>() == idof<Max>()) return Math.abs(y);
  return Math.pow(Math.abs(y), p);
}

/** s (+) x: s + x for the p-sums, max(s, x) for Max (terms are >= 0 and never NaN: inputs are finite). */
// @ts-ignore: decorator
@inline export function combine<M>(s: f64, x: f64): f64 {
  if (idof<M>() == idof<Max>()) return max(s, x);
  return s + x;
}

/** combine on two f64 lanes. */
// @ts-ignore: decorator
@inline export function combineV<M>(s: v128, x: v128): v128 {
  if (idof<M>() == idof<Max>()) return f64x2.max(s, x);
  return f64x2.add(s, x);
}

/** term on two f64 lanes (Square, Abs, Max only). */
// @ts-ignore: decorator
@inline function termV<M>(v: v128): v128 {
  if (idof<M>() == idof<Square>()) return f64x2.mul(v, v);
  return f64x2.abs(v);
}

/** f64x2 (term(v[0]), term(v[1])) of the f32x4 v (Square, Abs only). */
// @ts-ignore: decorator
@inline export function termsLow<M>(v: v128): v128 {
  return termV<M>(f64x2.promote_low_f32x4(v));
}

/** f64x2 (term(v[2]), term(v[3])) of the f32x4 v (Square, Abs only). */
// @ts-ignore: decorator
@inline export function termsHigh<M>(v: v128): v128 {
  return termV<M>(f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 2, 3)));
}
