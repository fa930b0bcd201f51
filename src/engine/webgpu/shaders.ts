/**
 * WGSL versions of the cycle kernels (engine/backend.ts), one entry point per program.
 * All share one bind group: the engine memory as f32 words, a 64-byte parameter block (at a
 * dynamic offset, one block per dispatch), a status array for the finiteness scan and scratch
 * space for partial sums. Addresses are f32 word indices; an accumulator is the first word of its
 * 8-byte slot. Sums are f32 (WGSL has no f64), in chunks of at most SUM_CHUNK terms. For p = Infinity
 * (range equalisation; p arrives as the f32 bits of +Inf) every sum is a max of |w| instead, which
 * is exact in f32: the same tree of partial results gives the same bits as the host's f64 max.
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

type FieldType = 'u32' | 'f32';

/** The view fields (w, outer, outerStride, count, inner): element (o, i, j) is word w + o*outerStride + i*inner + j. */
const VIEW = { w: 'u32', outer: 'u32', outerStride: 'u32', count: 'u32', inner: 'u32' } as const;

/**
 * Every program's parameters, in block order (word k of the block is the k-th field). Word
 * pointers are u32 (byte pointer >>> 2); f32 fields are stored as their bits.
 */
export const PARAMS = {
  /** acc (word of the first accumulator), p, the key (mode, a, b) and chunks: partial sums per key. */
  partialSums: { ...VIEW, acc: 'u32', p: 'f32', mode: 'u32', a: 'u32', b: 'u32', chunks: 'u32' },
  gatherSums: { acc: 'u32', b: 'u32', chunks: 'u32', p: 'f32' },
  /** s: word of the scale vector. */
  scale: { ...VIEW, s: 'u32' },
  /** incoming / outgoing: words of the sums A and B; d / dInv: words of the scale vectors. */
  solve: { incoming: 'u32', outgoing: 'u32', count: 'u32', p: 'f32', c: 'f32', d: 'u32', dInv: 'u32' },
  zero: { w: 'u32', n: 'u32' },
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

/** Programs with the view fields: element (o, i, j) of the view. */
const viewAt = /* wgsl */ `
fn at(o: u32, i: u32, j: u32) -> u32 {
  return params.w + o * params.outerStride + i * params.inner + j;
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
 * acc[idx] += sum |w(o,i,j)|^p over the view's elements whose key coordinate k has (k / a) % b == idx,
 * with k = o (CrossMode.outer), j (inner) or i (unit); accumulate() is CrossMode.unit, a = 1, b = count.
 * No workgroup barriers (slow on CPU drivers such as SwiftShader), two passes instead:
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
      var x = 0.0;
      if (mode == ${CrossMode.outer}u) { x = mem[at(k, y, z)]; }
      else if (mode == ${CrossMode.inner}u) { x = mem[at(y, z, k)]; }
      else { x = mem[at(y, k, z)]; }
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
  let count = params.count;
  let inner = params.inner;
  if (t >= params.outer * count * inner) { return; }
  let j = t % inner;
  let i = (t / inner) % count;
  let o = t / (inner * count);
  let w = at(o, i, j);
  mem[w] = mem[w] * mem[params.s + i];`, viewAt);

/**
 * d = (B / A)^(1/(2p)) / sqrt(c), computed as exp2((log2 B - log2 A) / (2p)) / sqrt(c) so that no
 * ratio overflows f32; for p = Infinity its limit sqrt(B) / sqrt(A) / sqrt(c) (A, B the max costs).
 * d = 1 where A or B is 0 or not finite (dead unit). dInv = 1 / d.
 */
const solve = program('solve', /* wgsl */ `
  if (t >= params.count) { return; }
  let a = mem[params.incoming + 2u * t];
  let b = mem[params.outgoing + 2u * t];
  var d = 1.0;
  if (a > 0.0 && b > 0.0 && isFinite(a) && isFinite(b)) {
    if (isFinite(params.p)) { d = exp2((log2(b) - log2(a)) / (2.0 * params.p)) / sqrt(params.c); }
    else { d = sqrt(b) / sqrt(a) / sqrt(params.c); }
  }
  mem[params.d + t] = d;
  mem[params.dInv + t] = 1.0 / d;`);

/** n words from w set to 0. */
const zero = program('zero', /* wgsl */ `
  if (t < params.n) { mem[params.w + t] = 0.0; }`);

/** status[slot] = min(status[slot], first index k < n with w[k] NaN or +-Inf). */
const scanFinite = program('scanFinite', /* wgsl */ `
  if (t < params.n && !isFinite(mem[params.w + t])) {
    atomicMin(&status[params.slot], t);
  }`);

export const SHADERS: Record<ShaderName, string> = { partialSums, gatherSums, scale, solve, zero, scanFinite };
