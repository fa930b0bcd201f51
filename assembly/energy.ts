import { Square, Abs, Pow, sumTerms } from "./terms";

// sum_{k<n} |w[k]|^p over n contiguous f32, in f64.
export function energy(w: usize, n: i32, p: f64): f64 {
  if (p == 2) return sumTerms<Square>(w, n, p);
  if (p == 1) return sumTerms<Abs>(w, n, p);
  return sumTerms<Pow>(w, n, p);
}
