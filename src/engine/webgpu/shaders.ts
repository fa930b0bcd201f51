/**
 * WGSL versions of the cycle kernels (engine/backend.ts), one entry point per shader.
 * All share one bind group: the engine memory as f32 words, a 64-byte parameter block (at a
 * dynamic offset, one block per dispatch), a status array for the finiteness scan and scratch
 * space for partial sums. Addresses are f32 word indices; an accumulator is the first word of its
 * 8-byte slot. Sums are f32 (WGSL has no f64), in chunks of at most SUM_CHUNK terms.
 */
import { CrossMode } from '../backend.js';

/** Parameter words, in the order the backend writes them. */
export const Param = {
  W: 0, Outer: 1, OuterStride: 2, Count: 3, Inner: 4, S: 5, Acc: 6, P: 7,
  Mode: 8, A: 9, B: 10, C: 11, D: 12, DInv: 13, N: 14, Slot: 15,
} as const;
export const PARAM_WORDS = 16;
export const WORKGROUP = 256;
/** Most terms one invocation sums before its partial sum is gathered. */
export const SUM_CHUNK = 128;

const header = /* wgsl */ `
struct Params { v: array<vec4<u32>, 4> }
@group(0) @binding(0) var<storage, read_write> mem: array<f32>;
@group(0) @binding(1) var<uniform> params: Params;
@group(0) @binding(2) var<storage, read_write> status: array<atomic<u32>>;
@group(0) @binding(3) var<storage, read_write> scratch: array<f32>;

fn param(k: u32) -> u32 { return params.v[k / 4u][k % 4u]; }
fn paramF(k: u32) -> f32 { return bitcast<f32>(param(k)); }

// One invocation per element: the linear index over a (x, y) grid of ${WORKGROUP}-wide workgroups.
fn linear(wg: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return (wg.y * nwg.x + wg.x) * ${WORKGROUP}u + lid;
}

// Element (o, i, j) of the view at param W: o*outerStride + i*inner + j.
fn at(o: u32, i: u32, j: u32) -> u32 {
  return param(${Param.W}u) + o * param(${Param.OuterStride}u) + i * param(${Param.Inner}u) + j;
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
`;

/**
 * acc[idx] += sum |w(o,i,j)|^p over the view's elements whose key coordinate k has (k / a) % b == idx,
 * with k = o (CrossMode.outer), j (inner) or i (unit); accumulate() is CrossMode.unit, a = 1, b = count.
 * No workgroup barriers (slow on CPU drivers such as SwiftShader), two passes instead:
 * partialSums: invocation (idx, c) sums every N-th element of idx from the c-th (N = chunks per idx)
 * into scratch[idx * N + c]; gatherSums: invocation idx adds its N partial sums, in order, to acc[idx].
 */
const partialSums = /* wgsl */ `${header}
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let chunks = param(${Param.N}u);
  let b = param(${Param.B}u);
  let t = linear(wg, nwg, lid);
  if (t >= b * chunks) { return; }
  let idx = t / chunks;
  let c = t % chunks;
  let mode = param(${Param.Mode}u);
  let a = param(${Param.A}u);
  let outer = param(${Param.Outer}u);
  let count = param(${Param.Count}u);
  let inner = param(${Param.Inner}u);
  let p = paramF(${Param.P}u);
  // Key extent K and the two other extents Y x Z, as (k, y, z) = (o, i, j), (j, o, i) or (i, o, j).
  var extent = count;
  var ny = outer;
  var nz = inner;
  if (mode == ${CrossMode.outer}u) { extent = outer; ny = count; nz = inner; }
  if (mode == ${CrossMode.inner}u) { extent = inner; ny = outer; nz = count; }
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
      sum += powAbs(x, p);
    }
  }
  scratch[t] = sum;
}
`;

const gatherSums = /* wgsl */ `${header}
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let idx = linear(wg, nwg, lid);
  if (idx >= param(${Param.B}u)) { return; }
  let chunks = param(${Param.N}u);
  var sum = 0.0;
  for (var c = 0u; c < chunks; c++) { sum += scratch[idx * chunks + c]; }
  let slot = param(${Param.Acc}u) + 2u * idx;
  mem[slot] += sum;
}
`;

/** w(o,i,j) *= s[i]. */
const scale = /* wgsl */ `${header}
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let e = linear(wg, nwg, lid);
  let count = param(${Param.Count}u);
  let inner = param(${Param.Inner}u);
  if (e >= param(${Param.Outer}u) * count * inner) { return; }
  let j = e % inner;
  let i = (e / inner) % count;
  let o = e / (inner * count);
  let w = at(o, i, j);
  mem[w] = mem[w] * mem[param(${Param.S}u) + i];
}
`;

/**
 * d = (B / A)^(1/(2p)) / sqrt(c), computed as exp2((log2 B - log2 A) / (2p)) / sqrt(c) so that no
 * ratio overflows f32; d = 1 where A or B is 0 or not finite (dead unit). dInv = 1 / d.
 */
const solve = /* wgsl */ `${header}
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linear(wg, nwg, lid);
  if (i >= param(${Param.Count}u)) { return; }
  let a = mem[param(${Param.Acc}u) + 2u * i];
  let b = mem[param(${Param.S}u) + 2u * i];
  var d = 1.0;
  if (a > 0.0 && b > 0.0 && isFinite(a) && isFinite(b)) {
    d = exp2((log2(b) - log2(a)) / (2.0 * paramF(${Param.P}u))) / sqrt(paramF(${Param.C}u));
  }
  mem[param(${Param.D}u) + i] = d;
  mem[param(${Param.DInv}u) + i] = 1.0 / d;
}
`;

/** n words from W set to 0. */
const zero = /* wgsl */ `${header}
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let e = linear(wg, nwg, lid);
  if (e < param(${Param.N}u)) { mem[param(${Param.W}u) + e] = 0.0; }
}
`;

/** status[slot] = min(status[slot], first index k < n with w[k] NaN or +-Inf). */
const scanFinite = /* wgsl */ `${header}
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let e = linear(wg, nwg, lid);
  if (e < param(${Param.N}u) && !isFinite(mem[param(${Param.W}u) + e])) {
    atomicMin(&status[param(${Param.Slot}u)], e);
  }
}
`;

export const SHADERS = { partialSums, gatherSums, scale, solve, zero, scanFinite } as const;
export type ShaderName = keyof typeof SHADERS;
