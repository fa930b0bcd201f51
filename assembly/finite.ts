// Index of the first NaN / +-Inf among n f32 (exponent bits all ones), or -1.

const EXP: u32 = 0x7f800000;

export function firstNonFinite(w: usize, n: i32): i32 {
  let k: i32 = 0;
  if (ASC_FEATURE_SIMD) {
    // Blocks of 16: the four lane masks OR-ed, one branch per block. On a hit, the loops below
    // find the first block of 4 holding one, then the lane.
    const m = i32x4.splat(EXP);
    for (; k + 16 <= n; k += 16) {
      const q = w + (<usize>k << 2);
      const a = i32x4.eq(v128.and(v128.load(q), m), m);
      const b = i32x4.eq(v128.and(v128.load(q, 16), m), m);
      const c = i32x4.eq(v128.and(v128.load(q, 32), m), m);
      const d = i32x4.eq(v128.and(v128.load(q, 48), m), m);
      if (v128.any_true(v128.or(v128.or(a, b), v128.or(c, d)))) break;
    }
    for (; k + 4 <= n; k += 4) {
      if (v128.any_true(i32x4.eq(v128.and(v128.load(w + (<usize>k << 2)), m), m))) break;
    }
  }
  for (; k < n; k++) {
    if ((load<u32>(w + (<usize>k << 2)) & EXP) == EXP) return k;
  }
  return -1;
}
