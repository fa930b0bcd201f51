// Materialises pending scales over a view (w, outer, outerStride, count, inner) in one pass:
//   w(o,i,j) = f32(w(o,i,j) * f32(s_f32[i] * g_f32[(o / a) % b]))      (a >= 1, b >= 1)
// Both builds form the same two f32 products, so they store the same bits. Returns 1 when a stored
// value is NaN or +-Inf, else 0: x - x is +0 (all bits clear) exactly when x is finite, so the OR of
// the bits of every x - x (4 lanes at a time in `chk`, one at a time in `bad`) is nonzero exactly
// when one stored x is not.

/** f32(s[i] * h) */
// @ts-ignore: decorator
@inline function factor(s: usize, i: i32, h: f32): f32 {
  return load<f32>(s + (<usize>i << 2)) * h;
}

/** [q] = f32([q] * f); the bits of x - x of the stored x. */
// @ts-ignore: decorator
@inline function scaleOne(q: usize, f: f32): u32 {
  const x = load<f32>(q) * f;
  store<f32>(q, x);
  return reinterpret<u32>(x - x);
}

/** [q..q+16) = f32x4.mul([q..q+16), f); returns x - x of the stored lanes. */
// @ts-ignore: decorator
@inline function scaleFour(q: usize, f: v128): v128 {
  const x = f32x4.mul(v128.load(q), f);
  v128.store(q, x);
  return f32x4.sub(x, x);
}

/** SIMD build: 4 units per step where inner == 1 (factors s[i..i+3] * splat(h)), else 8 then 4 elements of a unit's run per step. */
function passSimd(w: usize, outer: i32, outerStride: i32, count: i32, inner: i32, s: usize, g: usize, a: i32, b: i32): i32 {
  const rowBytes = <usize>outerStride << 2;
  const runBytes = <usize>inner << 2;
  let chk = i32x4.splat(0);
  let chk2 = i32x4.splat(0);
  let bad: u32 = 0;
  for (let o: i32 = 0; o < outer; o++) {
    const row = w + <usize>o * rowBytes;
    const h = load<f32>(g + (<usize>((o / a) % b) << 2));
    if (inner == 1) {
      const hv = f32x4.splat(h);
      let i: i32 = 0;
      for (; i + 8 <= count; i += 8) {
        const q = row + (<usize>i << 2);
        const sq = s + (<usize>i << 2);
        chk = v128.or(chk, scaleFour(q, f32x4.mul(v128.load(sq), hv)));
        chk2 = v128.or(chk2, scaleFour(q + 16, f32x4.mul(v128.load(sq, 16), hv)));
      }
      if (i + 4 <= count) {
        chk = v128.or(chk, scaleFour(row + (<usize>i << 2), f32x4.mul(v128.load(s + (<usize>i << 2)), hv)));
        i += 4;
      }
      for (; i < count; i++) bad |= scaleOne(row + (<usize>i << 2), factor(s, i, h));
    } else {
      let u = row;
      for (let i: i32 = 0; i < count; i++, u += runBytes) {
        const f = factor(s, i, h);
        const fv = f32x4.splat(f);
        let k: i32 = 0;
        for (; k + 8 <= inner; k += 8) {
          const q = u + (<usize>k << 2);
          chk = v128.or(chk, scaleFour(q, fv));
          chk2 = v128.or(chk2, scaleFour(q + 16, fv));
        }
        if (k + 4 <= inner) {
          chk = v128.or(chk, scaleFour(u + (<usize>k << 2), fv));
          k += 4;
        }
        for (; k < inner; k++) bad |= scaleOne(u + (<usize>k << 2), f);
      }
    }
  }
  return v128.any_true(v128.or(chk, chk2)) || bad != 0 ? 1 : 0;
}

/** Scalar build: the same products one element at a time. */
function passScalar(w: usize, outer: i32, outerStride: i32, count: i32, inner: i32, s: usize, g: usize, a: i32, b: i32): i32 {
  const rowBytes = <usize>outerStride << 2;
  const runBytes = <usize>inner << 2;
  let bad: u32 = 0;
  for (let o: i32 = 0; o < outer; o++) {
    const h = load<f32>(g + (<usize>((o / a) % b) << 2));
    let u = w + <usize>o * rowBytes;
    if (inner == 1) {
      for (let i: i32 = 0; i < count; i++) bad |= scaleOne(u + (<usize>i << 2), factor(s, i, h));
    } else {
      for (let i: i32 = 0; i < count; i++, u += runBytes) {
        const f = factor(s, i, h);
        for (let k: i32 = 0; k < inner; k++) bad |= scaleOne(u + (<usize>k << 2), f);
      }
    }
  }
  return bad != 0 ? 1 : 0;
}

export function scaleBoth(w: usize, outer: i32, outerStride: i32, count: i32, inner: i32, s: usize, g: usize, a: i32, b: i32): i32 {
  if (outer <= 0 || count <= 0 || inner <= 0) return 0;
  if (ASC_FEATURE_SIMD) return passSimd(w, outer, outerStride, count, inner, s, g, a, b);
  return passScalar(w, outer, outerStride, count, inner, s, g, a, b);
}
