// The n f32 at ptr := x.
export function fill(ptr: usize, n: i32, x: f32): void {
  let k: i32 = 0;
  if (ASC_FEATURE_SIMD) {
    const v = f32x4.splat(x);
    for (; k + 4 <= n; k += 4) v128.store(ptr + (<usize>k << 2), v);
  }
  for (; k < n; k++) store<f32>(ptr + (<usize>k << 2), x);
}
