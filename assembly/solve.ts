// d = (b/a)^(1/(2p)) / sqrt(c) in f64, a = incoming_f64[i], b = outgoing_f64[i] (docs/ALGORITHM.md section 3);
// for p == Infinity its limit sqrt(b/a) / sqrt(c), a and b the max costs (section 3a).
// Dead unit (a or b not > 0, NaN included) or an f64 result that is not finite and > 0: d = 1.
// A finite f64 d outside the f32 range is stored as is (Inf / 0), so the host sees the overflow.

export function solveScales(incoming: usize, outgoing: usize, count: i32, p: f64, c: f64, d: usize, dInv: usize): void {
  const e = 1 / (2 * p);
  const sc = Math.sqrt(c);
  for (let i: i32 = 0; i < count; i++) {
    const a = load<f64>(incoming + (<usize>i << 3));
    const b = load<f64>(outgoing + (<usize>i << 3));
    let x: f64 = 1;
    if (a > 0 && b > 0) {
      const t = (p == Infinity ? Math.sqrt(b / a) : Math.pow(b / a, e)) / sc;
      if (isFinite(t) && t > 0) x = t;
    }
    store<f32>(d + (<usize>i << 2), <f32>x);
    store<f32>(dInv + (<usize>i << 2), <f32>(1 / x));
  }
}
