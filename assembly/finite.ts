// Index of the first NaN / +-Inf among n f32 (exponent bits all ones), or -1.

const EXP: u32 = 0x7f800000;

export function firstNonFinite(w: usize, n: i32): i32 {
  let k: i32 = 0;
  if (ASC_FEATURE_SIMD) {
    // Find the first block of 4 holding one; the scalar loop below pins the lane.
    const m = i32x4.splat(EXP);
    for (; k + 4 <= n; k += 4) {
      if (v128.any_true(i32x4.eq(v128.and(v128.load(w + (<usize>k << 2)), m), m))) break;
    }
  }
  for (; k < n; k++) {
    if ((load<u32>(w + (<usize>k << 2)) & EXP) == EXP) return k;
  }
  return -1;
}
