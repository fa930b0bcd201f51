import { Square, Abs, Pow, Max } from "./inline/terms";
import { Unscaled } from "./inline/scaling";
import { sumRun } from "./inline/sum-run";

// sum_{k<n} |w[k]|^p over n contiguous f32, in f64; for p == Infinity, max_{k<n} |w[k]|.
export function energy(w: usize, n: i32, p: f64): f64 {
  if (p == 2) return sumRun<Square, Unscaled>(w, n, 0, 0, p);
  if (p == 1) return sumRun<Abs, Unscaled>(w, n, 0, 0, p);
  if (p == Infinity) return sumRun<Max, Unscaled>(w, n, 0, 0, p);
  return sumRun<Pow, Unscaled>(w, n, 0, 0, p);
}
