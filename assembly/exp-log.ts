// ln and exp in f64 for `solve`, without the lookup tables of AssemblyScript's Math.log / Math.exp
// (about 5 KB of the module). Both reduce by a power of two and sum a short series; within a few
// ulps of the correctly rounded result over the whole f64 range, which the log scales need (they are
// exact to about 1e-16 relative, far below the float32 copies the kernels read).

const LN2_HI: f64 = 6.93147180369123816490e-01; // ln 2, high 32 bits (k * LN2_HI is exact for |k| < 2^20)
const LN2_LO: f64 = 1.90821492927058770002e-10; // ln 2 - LN2_HI
const INV_LN2: f64 = 1.44269504088896338700e+00;

/**
 * ln x for x > 0 (+Inf for +Inf, -Inf for 0, NaN for x < 0 or NaN): x = 2^k m with m in
 * [sqrt(1/2), sqrt(2)), ln m = 2 atanh(s) = 2 (s + s^3/3 + s^5/5 + ...), s = (m - 1) / (m + 1),
 * |s| <= 0.1716, so eleven terms leave less than 1e-17.
 */
export function ln(x: f64): f64 {
  if (!(x > 0)) return x == 0 ? -Infinity : NaN;
  if (x == Infinity) return x;
  let k: i32 = 0;
  if (x < 2.2250738585072014e-308) {
    x *= 18014398509481984.0; // 2^54: subnormals become normal
    k = -54;
  }
  const bits = reinterpret<u64>(x);
  k += <i32>(bits >> 52) - 1023;
  let m = reinterpret<f64>((bits & 0x000fffffffffffff) | 0x3ff0000000000000);
  if (m > 1.4142135623730951) {
    m *= 0.5;
    k++;
  }
  const s = (m - 1) / (m + 1);
  const z = s * s;
  // 1/3 + z/5 + ... + z^9/21 in Estrin's order (pairs, then powers z^2, z^4, z^8): a chain of four
  // multiply-adds, not ten, so that the units of a `solve` loop overlap.
  const z2 = z * z;
  const z4 = z2 * z2;
  const b0 = (1.0 / 3 + z * (1.0 / 5)) + z2 * (1.0 / 7 + z * (1.0 / 9));
  const b1 = (1.0 / 11 + z * (1.0 / 13)) + z2 * (1.0 / 15 + z * (1.0 / 17));
  const series = z * ((b0 + z4 * b1) + z4 * z4 * (1.0 / 19 + z * (1.0 / 21)));
  const f = <f64>k;
  return f * LN2_HI + (f * LN2_LO + 2 * s + 2 * s * series);
}

/**
 * e^x (+Inf above ln(f64 max), 0 below ln(smallest subnormal), NaN for NaN): x = k ln 2 + r with
 * |r| <= ln(2) / 2, e^r by its Taylor series to r^13 (the rest is below 5e-18), times 2^k built
 * from its bits in at most two steps (k spans -1075 .. 1024).
 */
export function exp(x: f64): f64 {
  if (x != x) return x;
  if (x > 709.782712893384) return Infinity;
  if (x < -745.1332191019412) return 0;
  const kf = Math.round(x * INV_LN2);
  const r = x - kf * LN2_HI - kf * LN2_LO;
  // sum_{k <= 13} r^k / k! in Estrin's order, as in ln.
  const r2 = r * r;
  const r4 = r2 * r2;
  const c0 = (1 + r) + r2 * (1.0 / 2 + r * (1.0 / 6)) + r4 * ((1.0 / 24 + r * (1.0 / 120)) + r2 * (1.0 / 720 + r * (1.0 / 5040)));
  const c1 = (1.0 / 40320 + r * (1.0 / 362880)) + r2 * (1.0 / 3628800 + r * (1.0 / 39916800)) + r4 * (1.0 / 479001600 + r * (1.0 / 6227020800));
  let p = c0 + r4 * r4 * c1;
  let k = <i32>kf;
  if (k > 1023) {
    p *= 8.98846567431158e307; // 2^1023
    k -= 1023;
  } else if (k < -1022) {
    p *= 2.2250738585072014e-308; // 2^-1022
    k += 1022;
  }
  return p * reinterpret<f64>(<u64>(k + 1023) << 52);
}
