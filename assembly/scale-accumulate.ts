import { CrossMode } from "./cross-mode";
import { Square, Abs, Pow, hasSimd, term, termV } from "./terms";

// scale and accumulate fused into one pass over a view (w, outer, outerStride, count, inner):
//   w(o,i,j) = f32(w(o,i,j) * s_f32[i])            (the f32 multiply of `scale`, bit for bit)
//   acc_f64[idx] += |w(o,i,j)|^p                   (of the new value, promoted to f64 first)
//   idx = (o / a) % b (Outer),  (j / a) % b (Inner),  (i / a) % b (Unit)   (a >= 1, b >= 1; ./cross-mode.ts)
// Outer and Inner sum the units of another view of the same tensor (src/engine/fusion.ts); Unit with
// a = 1, b = count sums the view's own units, ready for its group's next step.

/** Scales n contiguous f32 at u by f in place; returns the sum of the new values' terms. */
// @ts-ignore: decorator
@inline function scaledSum<M>(u: usize, n: i32, f: f32, p: f64): f64 {
  let s: f64 = 0;
  let k: i32 = 0;
  if (ASC_FEATURE_SIMD) {
    if (hasSimd<M>()) {
      // 8 f32 per step into four f64x2 partial sums (independent add chains), as sumTerms.
      const fv = f32x4.splat(f);
      let s0 = f64x2.splat(0);
      let s1 = f64x2.splat(0);
      let s2 = f64x2.splat(0);
      let s3 = f64x2.splat(0);
      for (; k + 8 <= n; k += 8) {
        const q = u + (<usize>k << 2);
        const v = f32x4.mul(v128.load(q), fv);
        const x = f32x4.mul(v128.load(q, 16), fv);
        v128.store(q, v);
        v128.store(q, x, 16);
        s0 = f64x2.add(s0, termV<M>(f64x2.promote_low_f32x4(v)));
        s1 = f64x2.add(s1, termV<M>(f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 2, 3))));
        s2 = f64x2.add(s2, termV<M>(f64x2.promote_low_f32x4(x)));
        s3 = f64x2.add(s3, termV<M>(f64x2.promote_low_f32x4(v128.shuffle<f32>(x, x, 2, 3, 2, 3))));
      }
      if (k + 4 <= n) {
        const q = u + (<usize>k << 2);
        const v = f32x4.mul(v128.load(q), fv);
        v128.store(q, v);
        s0 = f64x2.add(s0, termV<M>(f64x2.promote_low_f32x4(v)));
        s1 = f64x2.add(s1, termV<M>(f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 2, 3))));
        k += 4;
      }
      const t = f64x2.add(f64x2.add(s0, s1), f64x2.add(s2, s3));
      s = f64x2.extract_lane(t, 0) + f64x2.extract_lane(t, 1);
    }
  } else {
    if (hasSimd<M>()) {
      // Scalar build: four partial sums, same reason.
      let s1: f64 = 0;
      let s2: f64 = 0;
      let s3: f64 = 0;
      for (; k + 4 <= n; k += 4) {
        const q = u + (<usize>k << 2);
        const x0 = load<f32>(q) * f;
        const x1 = load<f32>(q, 4) * f;
        const x2 = load<f32>(q, 8) * f;
        const x3 = load<f32>(q, 12) * f;
        store<f32>(q, x0);
        store<f32>(q, x1, 4);
        store<f32>(q, x2, 8);
        store<f32>(q, x3, 12);
        s += term<M>(x0, p);
        s1 += term<M>(x1, p);
        s2 += term<M>(x2, p);
        s3 += term<M>(x3, p);
      }
      s = (s + s1) + (s2 + s3);
    }
  }
  for (; k < n; k++) {
    const q = u + (<usize>k << 2);
    const x = load<f32>(q) * f;
    store<f32>(q, x);
    s += term<M>(x, p);
  }
  return s;
}

/** Outer, inner == 1: per row o, vectorise across units i with s[i..i+3]; one acc update per row. */
function rowsAcrossUnits<M>(w: usize, outer: i32, outerStride: i32, count: i32, s: usize, acc: usize, p: f64, a: i32, b: i32): void {
  const rowBytes = <usize>outerStride << 2;
  for (let o: i32 = 0; o < outer; o++) {
    const row = w + <usize>o * rowBytes;
    let sum: f64 = 0;
    let i: i32 = 0;
    if (ASC_FEATURE_SIMD) {
      if (hasSimd<M>()) {
        let s0 = f64x2.splat(0);
        let s1 = f64x2.splat(0);
        let s2 = f64x2.splat(0);
        let s3 = f64x2.splat(0);
        for (; i + 8 <= count; i += 8) {
          const q = row + (<usize>i << 2);
          const f = s + (<usize>i << 2);
          const v = f32x4.mul(v128.load(q), v128.load(f));
          const x = f32x4.mul(v128.load(q, 16), v128.load(f, 16));
          v128.store(q, v);
          v128.store(q, x, 16);
          s0 = f64x2.add(s0, termV<M>(f64x2.promote_low_f32x4(v)));
          s1 = f64x2.add(s1, termV<M>(f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 2, 3))));
          s2 = f64x2.add(s2, termV<M>(f64x2.promote_low_f32x4(x)));
          s3 = f64x2.add(s3, termV<M>(f64x2.promote_low_f32x4(v128.shuffle<f32>(x, x, 2, 3, 2, 3))));
        }
        if (i + 4 <= count) {
          const q = row + (<usize>i << 2);
          const v = f32x4.mul(v128.load(q), v128.load(s + (<usize>i << 2)));
          v128.store(q, v);
          s0 = f64x2.add(s0, termV<M>(f64x2.promote_low_f32x4(v)));
          s1 = f64x2.add(s1, termV<M>(f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 2, 3))));
          i += 4;
        }
        const t = f64x2.add(f64x2.add(s0, s1), f64x2.add(s2, s3));
        sum = f64x2.extract_lane(t, 0) + f64x2.extract_lane(t, 1);
      }
    } else {
      if (hasSimd<M>()) {
        let s1: f64 = 0;
        let s2: f64 = 0;
        let s3: f64 = 0;
        for (; i + 4 <= count; i += 4) {
          const q = row + (<usize>i << 2);
          const f = s + (<usize>i << 2);
          const x0 = load<f32>(q) * load<f32>(f);
          const x1 = load<f32>(q, 4) * load<f32>(f, 4);
          const x2 = load<f32>(q, 8) * load<f32>(f, 8);
          const x3 = load<f32>(q, 12) * load<f32>(f, 12);
          store<f32>(q, x0);
          store<f32>(q, x1, 4);
          store<f32>(q, x2, 8);
          store<f32>(q, x3, 12);
          sum += term<M>(x0, p);
          s1 += term<M>(x1, p);
          s2 += term<M>(x2, p);
          s3 += term<M>(x3, p);
        }
        sum = (sum + s1) + (s2 + s3);
      }
    }
    for (; i < count; i++) {
      const q = row + (<usize>i << 2);
      const x = load<f32>(q) * load<f32>(s + (<usize>i << 2));
      store<f32>(q, x);
      sum += term<M>(x, p);
    }
    const at = acc + (<usize>((o / a) % b) << 3);
    store<f64>(at, load<f64>(at) + sum);
  }
}

/** Outer, inner > 1: per row o, splat s[i] and vectorise along each unit's run; one acc update per row. */
function rowsAlongRuns<M>(w: usize, outer: i32, outerStride: i32, count: i32, inner: i32, s: usize, acc: usize, p: f64, a: i32, b: i32): void {
  const rowBytes = <usize>outerStride << 2;
  const runBytes = <usize>inner << 2;
  for (let o: i32 = 0; o < outer; o++) {
    let u = w + <usize>o * rowBytes;
    let sum: f64 = 0;
    for (let i: i32 = 0; i < count; i++, u += runBytes) sum += scaledSum<M>(u, inner, load<f32>(s + (<usize>i << 2)), p);
    const at = acc + (<usize>((o / a) % b) << 3);
    store<f64>(at, load<f64>(at) + sum);
  }
}

/**
 * Inner, a == 1 (idx = j % b): each unit's run of `inner` is cut into chunks of b; chunk position y
 * feeds acc[y], so splat s[i] and vectorise across the accumulators: acc[y..y+3] += t(w[..] * s[i]).
 * A last chunk shorter than b (inner % b != 0) just wraps.
 */
function unitsAcrossAcc<M>(w: usize, outer: i32, outerStride: i32, count: i32, inner: i32, s: usize, acc: usize, p: f64, b: i32): void {
  const rowBytes = <usize>outerStride << 2;
  const runBytes = <usize>inner << 2;
  for (let o: i32 = 0; o < outer; o++) {
    let u = w + <usize>o * rowBytes;
    for (let i: i32 = 0; i < count; i++, u += runBytes) {
      const f = load<f32>(s + (<usize>i << 2));
      for (let j0: i32 = 0; j0 < inner; j0 += b) {
        const c = u + (<usize>j0 << 2);
        const n = min(b, inner - j0);
        let y: i32 = 0;
        if (ASC_FEATURE_SIMD) {
          if (hasSimd<M>()) {
            const fv = f32x4.splat(f);
            for (; y + 8 <= n; y += 8) {
              const q = c + (<usize>y << 2);
              const at = acc + (<usize>y << 3);
              const v = f32x4.mul(v128.load(q), fv);
              const x = f32x4.mul(v128.load(q, 16), fv);
              v128.store(q, v);
              v128.store(q, x, 16);
              v128.store(at, f64x2.add(v128.load(at), termV<M>(f64x2.promote_low_f32x4(v))));
              v128.store(at, f64x2.add(v128.load(at, 16), termV<M>(f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 2, 3)))), 16);
              v128.store(at, f64x2.add(v128.load(at, 32), termV<M>(f64x2.promote_low_f32x4(x))), 32);
              v128.store(at, f64x2.add(v128.load(at, 48), termV<M>(f64x2.promote_low_f32x4(v128.shuffle<f32>(x, x, 2, 3, 2, 3)))), 48);
            }
            if (y + 4 <= n) {
              const q = c + (<usize>y << 2);
              const at = acc + (<usize>y << 3);
              const v = f32x4.mul(v128.load(q), fv);
              v128.store(q, v);
              v128.store(at, f64x2.add(v128.load(at), termV<M>(f64x2.promote_low_f32x4(v))));
              v128.store(at, f64x2.add(v128.load(at, 16), termV<M>(f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 2, 3)))), 16);
              y += 4;
            }
          }
        }
        for (; y < n; y++) {
          const q = c + (<usize>y << 2);
          const at = acc + (<usize>y << 3);
          const x = load<f32>(q) * f;
          store<f32>(q, x);
          store<f64>(at, load<f64>(at) + term<M>(x, p));
        }
      }
    }
  }
}

/** Inner, a > 1 (idx = (j / a) % b): runs of `a` consecutive j share acc; splat s[i], vectorise along the run. */
function unitsAlongRuns<M>(w: usize, outer: i32, outerStride: i32, count: i32, inner: i32, s: usize, acc: usize, p: f64, a: i32, b: i32): void {
  const rowBytes = <usize>outerStride << 2;
  const runBytes = <usize>inner << 2;
  for (let o: i32 = 0; o < outer; o++) {
    let u = w + <usize>o * rowBytes;
    for (let i: i32 = 0; i < count; i++, u += runBytes) {
      const f = load<f32>(s + (<usize>i << 2));
      let y: i32 = 0;
      for (let j0: i32 = 0; j0 < inner; j0 += a) {
        const at = acc + (<usize>y << 3);
        store<f64>(at, load<f64>(at) + scaledSum<M>(u + (<usize>j0 << 2), min(a, inner - j0), f, p));
        if (++y == b) y = 0;
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
      if (ASC_FEATURE_SIMD) {
        if (hasSimd<M>()) {
          for (; i + 4 <= count; i += 4) {
            const q = row + (<usize>i << 2);
            const v = f32x4.mul(v128.load(q), v128.load(s + (<usize>i << 2)));
            v128.store(q, v);
            const at = acc + (<usize>i << 3);
            v128.store(at, f64x2.add(v128.load(at), termV<M>(f64x2.promote_low_f32x4(v))));
            v128.store(at, f64x2.add(v128.load(at, 16), termV<M>(f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 2, 3)))), 16);
          }
        }
      }
    }
    if (contiguous) {
      for (; i < count; i++) {
        const q = row + (<usize>i << 2);
        const x = load<f32>(q) * load<f32>(s + (<usize>i << 2));
        store<f32>(q, x);
        const at = acc + (<usize>i << 3);
        store<f64>(at, load<f64>(at) + term<M>(x, p));
      }
    }
    for (; i < count; i++) {
      const at = acc + (<usize>((i / a) % b) << 3);
      store<f64>(at, load<f64>(at) + scaledSum<M>(row + <usize>i * runBytes, inner, load<f32>(s + (<usize>i << 2)), p));
    }
  }
}

function run<M>(w: usize, outer: i32, outerStride: i32, count: i32, inner: i32, s: usize, acc: usize, p: f64, mode: i32, a: i32, b: i32): void {
  if (mode == CrossMode.Unit) {
    ownUnits<M>(w, outer, outerStride, count, inner, s, acc, p, a, b);
  } else if (mode == CrossMode.Outer) {
    if (inner == 1) rowsAcrossUnits<M>(w, outer, outerStride, count, s, acc, p, a, b);
    else rowsAlongRuns<M>(w, outer, outerStride, count, inner, s, acc, p, a, b);
  } else if (b == 1) {
    // CrossMode.Inner from here on. Every element feeds acc[0]: one run per unit.
    unitsAlongRuns<M>(w, outer, outerStride, count, inner, s, acc, p, inner, 1);
  } else if (a == 1) {
    unitsAcrossAcc<M>(w, outer, outerStride, count, inner, s, acc, p, b);
  } else {
    unitsAlongRuns<M>(w, outer, outerStride, count, inner, s, acc, p, a, b);
  }
}

export function scaleAccumulate(w: usize, outer: i32, outerStride: i32, count: i32, inner: i32, s: usize, acc: usize, p: f64, mode: i32, a: i32, b: i32): void {
  if (outer <= 0 || count <= 0 || inner <= 0) return;
  if (p == 2) run<Square>(w, outer, outerStride, count, inner, s, acc, p, mode, a, b);
  else if (p == 1) run<Abs>(w, outer, outerStride, count, inner, s, acc, p, mode, a, b);
  else run<Pow>(w, outer, outerStride, count, inner, s, acc, p, mode, a, b);
}
