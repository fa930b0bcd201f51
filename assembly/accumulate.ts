import { Square, Abs, Pow, Max, combine } from "./inline/terms";
import { Unscaled } from "./inline/scaling";
import { addEach } from "./inline/add-each";
import { sumRun } from "./inline/sum-run";

// acc_f64[i] += sum_{o,j} |w(o,i,j)|^p (p == Infinity: acc_f64[i] = max(acc_f64[i], max_{o,j} |w(o,i,j)|)),  w(o,i,j) = f32 at w + 4*(o*outerStride + i*inner + j).

/** inner == 1: units are contiguous, vectorise across units i (4 at a time). */
function acrossUnits<M>(w: usize, outer: i32, outerStride: i32, count: i32, acc: usize, p: f64): void {
  const rowBytes = <usize>outerStride << 2;
  for (let o: i32 = 0; o < outer; o++) addEach<M, Unscaled>(w + <usize>o * rowBytes, count, 0, 0, acc, p, false);
}

/** inner > 1: each unit owns a contiguous run of `inner` f32 per o; vectorise along j, reduce, add. */
function alongRuns<M>(w: usize, outer: i32, outerStride: i32, count: i32, inner: i32, acc: usize, p: f64): void {
  const rowBytes = <usize>outerStride << 2;
  const runBytes = <usize>inner << 2;
  for (let o: i32 = 0; o < outer; o++) {
    let u = w + <usize>o * rowBytes;
    for (let i: i32 = 0; i < count; i++, u += runBytes) {
      const a = acc + (<usize>i << 3);
      store<f64>(a, combine<M>(load<f64>(a), sumRun<M, Unscaled>(u, inner, 0, 0, p)));
    }
  }
}

export function accumulate(w: usize, outer: i32, outerStride: i32, count: i32, inner: i32, acc: usize, p: f64): void {
  if (inner == 1) {
    if (p == 2) acrossUnits<Square>(w, outer, outerStride, count, acc, p);
    else if (p == 1) acrossUnits<Abs>(w, outer, outerStride, count, acc, p);
    else if (p == Infinity) acrossUnits<Max>(w, outer, outerStride, count, acc, p);
    else acrossUnits<Pow>(w, outer, outerStride, count, acc, p);
  } else if (inner > 1) {
    if (p == 2) alongRuns<Square>(w, outer, outerStride, count, inner, acc, p);
    else if (p == 1) alongRuns<Abs>(w, outer, outerStride, count, inner, acc, p);
    else if (p == Infinity) alongRuns<Max>(w, outer, outerStride, count, inner, acc, p);
    else alongRuns<Pow>(w, outer, outerStride, count, inner, acc, p);
  }
}
