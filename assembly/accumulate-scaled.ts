import { CrossMode } from "./cross-mode";
import { Square, Abs, Pow, Max, combine } from "./inline/terms";
import { TimesLane, TimesOne } from "./inline/scaling";
import { addEach, addEachPair } from "./inline/add-each";
import { sumRun } from "./inline/sum-run";

// Weighted sums under pending scales (deferred scales), read only, over a view (w, outer, outerStride, count, inner):
//   x = f32(w(o,i,j) * s_f32[i])                   (the f32 multiply of `scale`, bit for bit; nothing stored)
//   acc_f64[idx] += |x|^p                          (x promoted to f64 first;
//                                                   p == Infinity: acc = max(acc, |x|), ./inline/terms.ts)
//   idx = (o / a) % b (Outer),  (j / a) % b (Inner),  (i / a) % b (Unit)   (a >= 1, b >= 1; ./cross-mode.ts)
// Outer and Inner sum the units of another view of the same tensor (src/engine/deferral.ts); Unit with
// a = 1, b = count sums the view's own units.

/** s_f32[i] */
// @ts-ignore: decorator
@inline function factor(s: usize, i: i32): f32 {
  return load<f32>(s + (<usize>i << 2));
}

/** acc_f64[y] (+)= x, combined as M says */
// @ts-ignore: decorator
@inline function addAt<M>(acc: usize, y: i32, x: f64): void {
  const at = acc + (<usize>y << 3);
  store<f64>(at, combine<M>(load<f64>(at), x));
}

/**
 * Outer: per row o, the sum of the row's terms, then one acc update per row. inner == 1 vectorises
 * across units with s[i..i+3]; inner > 1 splats s[i] and vectorises along each unit's run.
 */
function rows<M>(w: usize, outer: i32, outerStride: i32, count: i32, inner: i32, s: usize, acc: usize, p: f64, a: i32, b: i32): void {
  const rowBytes = <usize>outerStride << 2;
  const runBytes = <usize>inner << 2;
  for (let o: i32 = 0; o < outer; o++) {
    const row = w + <usize>o * rowBytes;
    let sum: f64 = 0;
    if (inner == 1) sum = sumRun<M, TimesLane>(row, count, 0, s, p);
    else for (let i: i32 = 0; i < count; i++) sum = combine<M>(sum, sumRun<M, TimesOne>(row + <usize>i * runBytes, inner, factor(s, i), 0, p));
    addAt<M>(acc, (o / a) % b, sum);
  }
}

// How Inner cuts each unit's run of `inner` (scaled by splat s[i]) into chunks, as a compile-time tag:
//   AcrossAcc (a == 1, idx = j % b): chunks of b; position y in a chunk feeds acc[y], vectorised across
//     the accumulators; a last chunk shorter than b (inner % b != 0) just wraps.
//   AlongChunks (idx = (j / a) % b): chunks of a share one acc, the chunk number mod b; vectorised along.
// @ts-ignore: decorator
@final abstract class AcrossAcc {}
// @ts-ignore: decorator
@final abstract class AlongChunks {}

/** Inner: per unit run (o, i), chunk by chunk as C says. */
function units<M, C>(w: usize, outer: i32, outerStride: i32, count: i32, inner: i32, s: usize, acc: usize, p: f64, a: i32, b: i32): void {
  const rowBytes = <usize>outerStride << 2;
  const runBytes = <usize>inner << 2;
  const chunk = idof<C>() == idof<AcrossAcc>() ? b : a;
  for (let o: i32 = 0; o < outer; o++) {
    let u = w + <usize>o * rowBytes;
    let i: i32 = 0;
    if (idof<C>() == idof<AcrossAcc>()) {
      // Two unit runs per sweep of the accumulators: the same adds in the same order, half the acc traffic.
      for (; i + 1 < count; i += 2, u += runBytes << 1) {
        const f1 = factor(s, i);
        const f2 = factor(s, i + 1);
        for (let j0: i32 = 0; j0 < inner; j0 += chunk) {
          const c = u + (<usize>j0 << 2);
          addEachPair<M, TimesOne>(c, c + runBytes, min(chunk, inner - j0), f1, f2, acc, p);
        }
      }
    }
    for (; i < count; i++, u += runBytes) {
      const f = factor(s, i);
      let y: i32 = 0;
      for (let j0: i32 = 0; j0 < inner; j0 += chunk) {
        const c = u + (<usize>j0 << 2);
        const n = min(chunk, inner - j0);
        if (idof<C>() == idof<AcrossAcc>()) {
          addEach<M, TimesOne>(c, n, f, 0, acc, p, true);
        } else {
          addAt<M>(acc, y, sumRun<M, TimesOne>(c, n, f, 0, p));
          if (++y == b) y = 0;
        }
      }
    }
  }
}

/** Unit: idx = (i / a) % b. Own units (a == 1, b >= count) with inner == 1 vectorise across units. */
function ownUnits<M>(w: usize, outer: i32, outerStride: i32, count: i32, inner: i32, s: usize, acc: usize, p: f64, a: i32, b: i32): void {
  const rowBytes = <usize>outerStride << 2;
  const runBytes = <usize>inner << 2;
  const contiguous = inner == 1 && a == 1 && b >= count;
  for (let o: i32 = 0; o < outer; o++) {
    const row = w + <usize>o * rowBytes;
    let i: i32 = 0;
    if (contiguous) {
      addEach<M, TimesLane>(row, count, 0, s, acc, p, false);
      i = count;
    }
    for (; i < count; i++) addAt<M>(acc, (i / a) % b, sumRun<M, TimesOne>(row + <usize>i * runBytes, inner, factor(s, i), 0, p));
  }
}

function run<M>(w: usize, outer: i32, outerStride: i32, count: i32, inner: i32, s: usize, acc: usize, p: f64, mode: i32, a: i32, b: i32): void {
  if (mode == CrossMode.Unit) ownUnits<M>(w, outer, outerStride, count, inner, s, acc, p, a, b);
  else if (mode == CrossMode.Outer) rows<M>(w, outer, outerStride, count, inner, s, acc, p, a, b);
  // CrossMode.Inner from here on. b == 1: every element feeds acc[0], one chunk per unit.
  else if (b == 1) units<M, AlongChunks>(w, outer, outerStride, count, inner, s, acc, p, inner, 1);
  else if (a == 1) units<M, AcrossAcc>(w, outer, outerStride, count, inner, s, acc, p, a, b);
  else units<M, AlongChunks>(w, outer, outerStride, count, inner, s, acc, p, a, b);
}

export function accumulateScaled(w: usize, outer: i32, outerStride: i32, count: i32, inner: i32, s: usize, acc: usize, p: f64, mode: i32, a: i32, b: i32): void {
  if (outer <= 0 || count <= 0 || inner <= 0) return;
  if (p == 2) run<Square>(w, outer, outerStride, count, inner, s, acc, p, mode, a, b);
  else if (p == 1) run<Abs>(w, outer, outerStride, count, inner, s, acc, p, mode, a, b);
  else if (p == Infinity) run<Max>(w, outer, outerStride, count, inner, s, acc, p, mode, a, b);
  else run<Pow>(w, outer, outerStride, count, inner, s, acc, p, mode, a, b);
}
