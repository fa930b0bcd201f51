/**
 * WGSL versions of the cycle kernels (engine/backend.ts), one entry point per program.
 * All share one bind group: the engine memory as f32 words, a 64-byte parameter block (at a
 * dynamic offset, one block per dispatch), a status array for the finiteness scan and scratch
 * space for partial sums. Addresses are f32 word indices; an accumulator is the first word of its
 * 8-byte slot. Sums are f32 (WGSL has no f64), in chunks of at most SUM_CHUNK terms. For p = Infinity
 * (range equalisation; p arrives as the f32 bits of +Inf) every sum is a max of |w| instead, which
 * is exact in f32: the same tree of partial results gives the same bits as the host's f64 max.
 * Scaled values (scale, scaleBoth, the terms of accumulateScaled) are the host's f32 products.
 *
 * Each program's parameter block is a named WGSL struct generated from one field table
 * (PARAMS), and the backend packs its blocks from the same table (packParams), so the two
 * cannot disagree on an offset.
 */
import { CrossMode } from '../backend.js';

export const WORKGROUP = 256;
/** Most terms one invocation sums before its partial sum is gathered. */
export const SUM_CHUNK = 128;
/** u32 words in one parameter block (64 bytes: the binding size of every program). */
export const PARAM_WORDS = 16;
/** partialSums' `s` when the terms are not scaled (no word pointer reaches it: byte pointers are below 2^32). */
export const NO_SCALE = 0xffffffff;

type FieldType = 'u32' | 'f32';

/** The view fields (w, outer, outerStride, count, inner): element (o, i, j) is word w + o*outerStride + i*inner + j. */
const VIEW = { w: 'u32', outer: 'u32', outerStride: 'u32', count: 'u32', inner: 'u32' } as const;

/**
 * Every program's parameters, in block order (word k of the block is the k-th field). Word
 * pointers are u32 (byte pointer >>> 2); f32 fields are stored as their bits.
 */
export const PARAMS = {
  /**
   * p, the key (mode, a, b) and chunks: partial sums per key; s: word of the scale vector the
   * terms are weighted by, NO_SCALE for none (accumulate).
   */
  partialSums: { ...VIEW, s: 'u32', p: 'f32', mode: 'u32', a: 'u32', b: 'u32', chunks: 'u32' },
  /** acc: word of the first accumulator. */
  gatherSums: { acc: 'u32', b: 'u32', chunks: 'u32', p: 'f32' },
  /** s: word of the scale vector. */
  scale: { ...VIEW, s: 'u32' },
  /** s: the per-unit scales, g: the scales picked by (o / a) % b. */
  scaleBoth: { ...VIEW, s: 'u32', g: 'u32', a: 'u32', b: 'u32' },
  /**
   * sums: word of the [Af | Bf | Ao | Bo] accumulator block; e = 1 / (2p) (1/2 for p = Infinity)
   * and h = log2(c) / 2, the exponents of the step; sigma, sigmaInv, d, dInv: words of the scale vectors.
   */
  solve: { sums: 'u32', count: 'u32', e: 'f32', h: 'f32', omega: 'f32', logSigma: 'u32', sigma: 'u32', sigmaInv: 'u32', d: 'u32', dInv: 'u32' },
  fill: { w: 'u32', n: 'u32', x: 'f32' },
  copy: { dst: 'u32', src: 'u32', n: 'u32' },
  /** slot: the status word that receives the first bad index. */
  scanFinite: { w: 'u32', n: 'u32', slot: 'u32' },
} as const satisfies Record<string, Record<string, FieldType>>;

export type ShaderName = keyof typeof PARAMS;
/** The values of program `N`'s parameters, every field required. */
export type ParamValues<N extends ShaderName> = { [F in keyof (typeof PARAMS)[N]]: number };

const f32Bits = (x: number) => new Uint32Array(Float32Array.of(x).buffer)[0];

/** Program `name`'s parameter block: field k of PARAMS[name] at word k. */
export function packParams<N extends ShaderName>(name: N, values: ParamValues<N>): Uint32Array {
  const block = new Uint32Array(PARAM_WORDS);
  const fields = PARAMS[name] as Record<string, FieldType>;
  Object.entries(fields).forEach(([field, type], k) => {
    const x = (values as Record<string, number>)[field];
    block[k] = type === 'f32' ? f32Bits(x) : x;
  });
  return block;
}

const structName = (name: ShaderName) => `${name[0].toUpperCase()}${name.slice(1)}Params`;

/** `struct ScaleParams { w: u32, outer: u32, ... }` from the table. */
export function paramStruct(name: ShaderName): string {
  const fields = Object.entries(PARAMS[name] as Record<string, FieldType>).map(([field, type]) => `${field}: ${type}`);
  return `struct ${structName(name)} { ${fields.join(', ')} }`;
}

const bindings = (name: ShaderName) => /* wgsl */ `
${paramStruct(name)}
@group(0) @binding(0) var<storage, read_write> mem: array<f32>;
@group(0) @binding(1) var<uniform> params: ${structName(name)};
@group(0) @binding(2) var<storage, read_write> status: array<atomic<u32>>;
@group(0) @binding(3) var<storage, read_write> scratch: array<f32>;
`;

const helpers = /* wgsl */ `
// One invocation per element: the linear index over a (x, y) grid of ${WORKGROUP}-wide workgroups.
fn linear(wg: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return (wg.y * nwg.x + wg.x) * ${WORKGROUP}u + lid;
}

// |x|^p; p = 1 and 2 exactly, 0 for x = 0 whatever p.
fn powAbs(x: f32, p: f32) -> f32 {
  let a = abs(x);
  if (p == 2.0) { return a * a; }
  if (p == 1.0) { return a; }
  if (a == 0.0) { return 0.0; }
  return exp2(p * log2(a));
}

fn isFinite(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}

// s (+) t: s + t for the p-sums, max(s, t) for p = Infinity (read from the bits: no inf literal in WGSL).
fn combine(s: f32, t: f32, p: f32) -> f32 {
  if (!isFinite(p)) { return max(s, t); }
  return s + t;
}

// The cost of one weight: |x|^p, or |x| for p = Infinity.
fn cost(x: f32, p: f32) -> f32 {
  if (!isFinite(p)) { return abs(x); }
  return powAbs(x, p);
}
`;

/** Programs with the view fields: element (o, i, j) of the view, and the element of invocation t (o, i, j row-major). */
const viewAt = /* wgsl */ `
fn at(o: u32, i: u32, j: u32) -> u32 {
  return params.w + o * params.outerStride + i * params.inner + j;
}

fn element(t: u32) -> vec3<u32> {
  let inner = params.inner;
  let count = params.count;
  return vec3<u32>(t / (inner * count), (t / inner) % count, t % inner);
}
`;

/** A whole program: its bindings, the helpers, and `main` with `t` = this invocation's linear index. */
function program(name: ShaderName, body: string, extra = ''): string {
  return /* wgsl */ `${bindings(name)}${helpers}${extra}
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = linear(wg, nwg, lid);
${body}
}
`;
}

/**
 * acc[idx] += sum |x|^p over the view's elements whose key coordinate k has (k / a) % b == idx,
 * with k = o (CrossMode.outer), j (inner) or i (unit), and x = w(o,i,j) * s[i] (accumulateScaled)
 * or w(o,i,j) (s = NO_SCALE; accumulate() is CrossMode.unit, a = 1, b = count). Nothing is stored
 * in the view. No workgroup barriers (slow on CPU drivers such as SwiftShader), two passes instead:
 * partialSums: invocation (idx, c) sums every N-th element of idx from the c-th (N = chunks per idx)
 * into scratch[idx * N + c]; gatherSums: invocation idx adds its N partial sums, in order, to acc[idx].
 */
const partialSums = program('partialSums', /* wgsl */ `
  let chunks = params.chunks;
  let b = params.b;
  if (t >= b * chunks) { return; }
  let idx = t / chunks;
  let c = t % chunks;
  let mode = params.mode;
  let a = params.a;
  // Key extent K and the two other extents Y x Z, as (k, y, z) = (o, i, j), (j, o, i) or (i, o, j).
  var extent = params.count;
  var ny = params.outer;
  var nz = params.inner;
  if (mode == ${CrossMode.outer}u) { extent = params.outer; ny = params.count; nz = params.inner; }
  if (mode == ${CrossMode.inner}u) { extent = params.inner; ny = params.outer; nz = params.count; }
  // Keys of this idx: k = (q*b + idx)*a + r for r < a, over the blocks q that start inside the extent.
  let blocks = (extent + a - 1u) / a;
  var nq = 0u;
  if (idx < blocks) { nq = (blocks - idx + b - 1u) / b; }
  let plane = ny * nz;
  let total = nq * a * plane;
  var sum = 0.0;
  for (var e = c; e < total; e += chunks) {
    let yz = e % plane;
    let q = e / plane;
    let k = ((q / a) * b + idx) * a + q % a;
    if (k < extent) {
      let y = yz / nz;
      let z = yz % nz;
      // The element (o, i, j) and its unit i.
      var w = at(y, k, z);
      var i = k;
      if (mode == ${CrossMode.outer}u) { w = at(k, y, z); i = y; }
      else if (mode == ${CrossMode.inner}u) { w = at(y, z, k); i = z; }
      var x = mem[w];
      if (params.s != ${NO_SCALE}u) { x = x * mem[params.s + i]; }
      sum = combine(sum, cost(x, params.p), params.p);
    }
  }
  scratch[t] = sum;`, viewAt);

const gatherSums = program('gatherSums', /* wgsl */ `
  if (t >= params.b) { return; }
  let chunks = params.chunks;
  var sum = 0.0;
  for (var c = 0u; c < chunks; c++) { sum = combine(sum, scratch[t * chunks + c], params.p); }
  let slot = params.acc + 2u * t;
  mem[slot] = combine(mem[slot], sum, params.p);`);

/** w(o,i,j) *= s[i]. */
const scale = program('scale', /* wgsl */ `
  if (t >= params.outer * params.count * params.inner) { return; }
  let e = element(t);
  let w = at(e.x, e.y, e.z);
  mem[w] = mem[w] * mem[params.s + e.y];`, viewAt);

/** w(o,i,j) = w(o,i,j) * (s[i] * g[(o / a) % b]): two f32 products, as on the host. */
const scaleBoth = program('scaleBoth', /* wgsl */ `
  if (t >= params.outer * params.count * params.inner) { return; }
  let e = element(t);
  let w = at(e.x, e.y, e.z);
  mem[w] = mem[w] * (mem[params.s + e.y] * mem[params.g + (e.x / params.a) % params.b]);`, viewAt);

/**
 * One group step on pending scales sigma (engine/backend.ts, solve), in f32, in log2 so that no
 * intermediate leaves the f32 range before the result does. Unit t's sums are the accumulators
 * t, n + t, 2n + t, 3n + t of the block [Af | Bf | Ao | Bo]: A = Af + Ao, B = Bf + Bo, and
 *   log2 x = e * (log2 B - log2 A) - h,   e = 1 / (2p) (1/2 for p = Infinity), h = log2(c) / 2,
 * the f64 values of e and h rounded to f32 on the host: x = (B / A)^e / sqrt(c) even where it is
 * beyond f32 (c = 1e-80: x = Inf, stored, as the host stores f32(x)).
 * The unit's pending scale is kept as u = log2 sigma in f32 (the first word of its 8-byte logSigma
 * slot; the host keeps the natural log in f64). A dead unit (A or B not a positive finite f32)
 * keeps u, so d = exp2(0) = 1 exactly. Otherwise
 *   l = log2 x (omega = 1), or u + omega * (log2 x - u)   (over-relaxation in log scale),
 * logSigma = l, sigma = exp2(l), sigmaInv = exp2(-l), d = exp2(l - u), dInv = exp2(u - l). The energy
 * is not computed: the device engine never reads it.
 */
const solve = program('solve', /* wgsl */ `
  let n = params.count;
  if (t >= n) { return; }
  let slot = params.sums + 2u * t;
  let a = mem[slot] + mem[slot + 4u * n];
  let b = mem[slot + 2u * n] + mem[slot + 6u * n];
  // log2 sigma, in the first word of the unit's 8-byte slot.
  let at = params.logSigma + 2u * t;
  let u = mem[at];
  var l = u;
  if (a > 0.0 && b > 0.0 && isFinite(a) && isFinite(b)) {
    l = params.e * (log2(b) - log2(a)) - params.h;
    if (params.omega != 1.0) { l = u + params.omega * (l - u); }
  }
  mem[at] = l;
  mem[params.sigma + t] = exp2(l);
  mem[params.sigmaInv + t] = exp2(-l);
  mem[params.d + t] = exp2(l - u);
  mem[params.dInv + t] = exp2(u - l);`);

/** n words from w set to x (zero() is x = 0). */
const fill = program('fill', /* wgsl */ `
  if (t < params.n) { mem[params.w + t] = params.x; }`);

/** n words from src copied to dst (a load and a store: no arithmetic touches the bits). */
const copy = program('copy', /* wgsl */ `
  if (t < params.n) { mem[params.dst + t] = mem[params.src + t]; }`);

/** status[slot] = min(status[slot], first index k < n with w[k] NaN or +-Inf). */
const scanFinite = program('scanFinite', /* wgsl */ `
  if (t < params.n && !isFinite(mem[params.w + t])) {
    atomicMin(&status[params.slot], t);
  }`);

export const SHADERS: Record<ShaderName, string> = { partialSums, gatherSums, scale, scaleBoth, solve, fill, copy, scanFinite };
