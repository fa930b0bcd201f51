// One group step on pending scales, for `count` units (src/engine/backend.ts `solve` has the spec;
// docs/ALGORITHM.md section 3b). sums = [Af | Bf | Ao | Bo], f64 blocks of `count`; u = logSigma[i]; in f64:
//   A = Af[i] + Ao[i],  B = Bf[i] + Bo[i]
//   t = e (log B - log A) - log(c) / 2,  e = 1 / (2p)   (p == Infinity: e = 1/2, the limit, section 3a)
//   t = u for a dead unit (A or B not > 0, NaN included) or a t that is not finite
//   n = t for omega == 1 (the exact cycle), else u + omega (t - u)
//   logSigma[i] = n, sigma[i] = f32(e^n), sigmaInv[i] = f32(e^-n), d[i] = f32(e^(n-u)), dInv[i] = f32(e^(u-n))
//   energy = sum_i e^(pn) Af[i] + e^(-pn) Bf[i]   (0 for p == Infinity)
// Three transcendentals per unit, not eight (they were most of a cycle's time on 500-wide layers):
//   log B - log A = log(B / A) while B / A is a normal f64 (else the two logs: no quotient overflows);
//   E = e^n, e^-n = 1 / E;  D = e^(n-u), e^(u-n) = 1 / D;  e^(pn) = E^2 (p = 2), E (p = 1), else exp(pn).
// A quotient costs at most an f64 ulp before the f32 rounding, and where E or D leaves the f64 range
// the f32 results are Inf / 0 either way. A value outside the f32 range is stored as Inf / 0, so the
// host sees the overflow. ln and exp are ./exp-log.ts (no lookup tables).
import { exp, ln } from "./exp-log";

/** f64 at block h, unit i of sums */
// @ts-ignore: decorator
@inline function sum(sums: usize, count: i32, h: i32, i: i32): f64 {
  return load<f64>(sums + ((<usize>h * <usize>count + <usize>i) << 3));
}

// @ts-ignore: decorator
@inline function put(v: usize, i: i32, x: f64): void {
  store<f32>(v + (<usize>i << 2), <f32>x);
}

export function solve(sums: usize, count: i32, p: f64, c: f64, omega: f64, logSigma: usize, sigma: usize, sigmaInv: usize, d: usize, dInv: usize, energy: usize): void {
  const e = p == Infinity ? 0.5 : 1 / (2 * p);
  const h = ln(c) / 2;
  let en: f64 = 0;
  for (let i: i32 = 0; i < count; i++) {
    const af = sum(sums, count, 0, i);
    const bf = sum(sums, count, 1, i);
    const A = af + sum(sums, count, 2, i);
    const B = bf + sum(sums, count, 3, i);
    const at = logSigma + (<usize>i << 3);
    const u = load<f64>(at);
    let t = u;
    if (A > 0 && B > 0) {
      const r = B / A;
      const x = e * (r >= 2.2250738585072014e-308 && r < Infinity ? ln(r) : ln(B) - ln(A)) - h;
      if (isFinite(x)) t = x;
    }
    const n = omega == 1 ? t : u + omega * (t - u);
    store<f64>(at, n);
    const E = exp(n);
    const D = exp(n - u);
    put(sigma, i, E);
    put(sigmaInv, i, 1 / E);
    put(d, i, D);
    put(dInv, i, 1 / D);
    if (p != Infinity) {
      const P = p == 2 ? E * E : p == 1 ? E : exp(p * n);
      en += P * af + bf / P;
    }
  }
  store<f64>(energy, en);
}
