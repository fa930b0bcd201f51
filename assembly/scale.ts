import { ByLane, ByOne, scaleRun } from "./inline/scaling";

// w(o,i,j) *= s_f32[i]: one f32 multiply per element.

export function scale(w: usize, outer: i32, outerStride: i32, count: i32, inner: i32, s: usize): void {
  const rowBytes = <usize>outerStride << 2;
  if (inner == 1) {
    // Units contiguous: multiply 4 units by s[i..i+3].
    for (let o: i32 = 0; o < outer; o++) scaleRun<ByLane>(w + <usize>o * rowBytes, count, 0, s);
  } else if (inner > 1) {
    // One run of `inner` f32 per unit: multiply by splat(s[i]).
    const runBytes = <usize>inner << 2;
    for (let o: i32 = 0; o < outer; o++) {
      let u = w + <usize>o * rowBytes;
      for (let i: i32 = 0; i < count; i++, u += runBytes) scaleRun<ByOne>(u, inner, load<f32>(s + (<usize>i << 2)), 0);
    }
  }
}
