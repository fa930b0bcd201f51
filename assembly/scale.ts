// w(o,i,j) *= s_f32[i]: one f32 multiply per element.

export function scale(w: usize, outer: i32, outerStride: i32, count: i32, inner: i32, s: usize): void {
  const rowBytes = <usize>outerStride << 2;
  if (inner == 1) {
    // Units contiguous: multiply 4 units by s[i..i+3].
    for (let o: i32 = 0; o < outer; o++) {
      const row = w + <usize>o * rowBytes;
      let i: i32 = 0;
      if (ASC_FEATURE_SIMD) {
        for (; i + 4 <= count; i += 4) {
          const q = row + (<usize>i << 2);
          v128.store(q, f32x4.mul(v128.load(q), v128.load(s + (<usize>i << 2))));
        }
      }
      for (; i < count; i++) {
        const q = row + (<usize>i << 2);
        store<f32>(q, load<f32>(q) * load<f32>(s + (<usize>i << 2)));
      }
    }
  } else if (inner > 1) {
    // One run of `inner` f32 per unit: multiply by splat(s[i]).
    const runBytes = <usize>inner << 2;
    for (let o: i32 = 0; o < outer; o++) {
      let u = w + <usize>o * rowBytes;
      for (let i: i32 = 0; i < count; i++, u += runBytes) {
        const f = load<f32>(s + (<usize>i << 2));
        let j: i32 = 0;
        if (ASC_FEATURE_SIMD) {
          const fv = f32x4.splat(f);
          for (; j + 4 <= inner; j += 4) {
            const q = u + (<usize>j << 2);
            v128.store(q, f32x4.mul(v128.load(q), fv));
          }
        }
        for (; j < inner; j++) {
          const q = u + (<usize>j << 2);
          store<f32>(q, load<f32>(q) * f);
        }
      }
    }
  }
}
