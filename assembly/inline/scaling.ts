// What a kernel does to the f32 it reads at byte pointer q, as a compile-time type tag (like the term kinds):
//   Unscaled:  x = [q]                              (read only)
//   ByOne:     x = f32([q] * f),     stored at q    (one factor for the whole run)
//   ByLane:    x = f32([q] * [sq]),  stored at q    (sq: the f32 factors, lane for lane)
//   TimesOne:  x = f32([q] * f),     read only      (the value ByOne would store: deferred scales)
//   TimesLane: x = f32([q] * [sq]),  read only      (the value ByLane would store)
// Every scaled value is the one f32 multiply of `scale`, bit for bit, in SIMD and scalar builds alike.
// Pointers, not indices: a caller's second block is q + 16, which costs less than u + ((k + 4) << 2).

// @ts-ignore: decorator
@final export abstract class Unscaled {}
// @ts-ignore: decorator
@final export abstract class ByOne {}
// @ts-ignore: decorator
@final export abstract class ByLane {}
// @ts-ignore: decorator
@final export abstract class TimesOne {}
// @ts-ignore: decorator
@final export abstract class TimesLane {}

/** One factor for the whole run (ByOne, TimesOne) rather than one per lane. */
// @ts-ignore: decorator
@inline function oneFactor<S>(): bool {
  return idof<S>() == idof<ByOne>() || idof<S>() == idof<TimesOne>();
}

/** The scaled value is stored back (ByOne, ByLane). */
// @ts-ignore: decorator
@inline function stores<S>(): bool {
  return idof<S>() == idof<ByOne>() || idof<S>() == idof<ByLane>();
}

/** x of the 4 f32 at q, stored back where S says; fv = f32x4.splat(f), hoisted by the caller. */
// @ts-ignore: decorator
@inline export function lanes4<S>(q: usize, fv: v128, sq: usize): v128 {
  const v = v128.load(q);
  if (idof<S>() == idof<Unscaled>()) return v;
  const x = f32x4.mul(v, oneFactor<S>() ? fv : v128.load(sq));
  if (stores<S>()) v128.store(q, x);
  return x;
}

/** x of the one f32 at q, stored back where S says. */
// @ts-ignore: decorator
@inline export function lane1<S>(q: usize, f: f32, sq: usize): f32 {
  if (idof<S>() == idof<Unscaled>()) return load<f32>(q);
  const x = load<f32>(q) * (oneFactor<S>() ? f : load<f32>(sq));
  if (stores<S>()) store<f32>(q, x);
  return x;
}

/** [u + 4k] = x for k < n (S = ByOne or ByLane, factors at s + 4k): 4 lanes per SIMD step, then one at a time. */
// @ts-ignore: decorator
@inline export function scaleRun<S>(u: usize, n: i32, f: f32, s: usize): void {
  let k: i32 = 0;
  if (ASC_FEATURE_SIMD) {
    const fv = f32x4.splat(f);
    for (; k + 4 <= n; k += 4) lanes4<S>(u + (<usize>k << 2), fv, s + (<usize>k << 2));
  }
  for (; k < n; k++) lane1<S>(u + (<usize>k << 2), f, s + (<usize>k << 2));
}
