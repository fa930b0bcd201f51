/**
 * One real balance of a network whose engine memory passes 2 GiB, checked against float64 in JS:
 *   in -> dense 'big' [2^21 + 16, 256] (2 GiB + 16 KiB of f32) -> relu -> dense 'head' [256, 4]
 * 'big' ends, and 'head' lies, above byte offset 2^31 in the engine's Wasm memory. After one cycle
 * (c = 1, p = 2) unit u's scale must be d_u = (B_u / A_u)^(1/4), with A_u = sum_r big[r, u]^2 and
 * B_u = sum_k head[u, k]^2 summed here in float64, and every rescaled weight the f32 product of its
 * old value and the engine's f32 scale. Too slow and too large for the unit suite (about 4.3 GB
 * resident: the network's arrays and the engine's copy); the unit suite tests the pointer
 * arithmetic (test/engine/memory.test.ts).
 *
 *   npx tsx bench/large-tensor.ts [--backend simd|scalar|js]   (prints one JSON line; exit 1 on a mismatch)
 */
import { parseArgs } from 'node:util';
import { balance } from '../src/engine/enorm.js';
import type { BackendName } from '../src/engine/backend.js';
import type { Network } from '../src/network/layers.js';

const { values } = parseArgs({ options: { backend: { type: 'string', default: 'simd' } } });
const backend = values.backend as BackendName;
const ROWS = 2 ** 21 + 16;
const UNITS = 256;
const OUT = 4;
/** Not a power of two: a pointer that wrapped modulo 2^31 would read other values, not the same pattern. */
const PERIOD = 65537;

const started = performance.now();
const big = new Float32Array(ROWS * UNITS);
// A seed of PERIOD values, then doubling copies (memcpy speed): big[i] = seed[i % PERIOD].
let state = 12345;
const next = () => ((state = Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5;
for (let i = 0; i < PERIOD; i++) big[i] = next() * (1 + (i % UNITS) / 64);
for (let n = PERIOD; n < big.length; n *= 2) big.copyWithin(n, 0, Math.min(n, big.length - n));
const head = Float32Array.from({ length: UNITS * OUT }, () => next());
const seed = big.slice(0, PERIOD);
const headBefore = head.slice();
const net: Network = [
  { kind: 'dense', name: 'big', weight: big, shape: [ROWS, UNITS] },
  { kind: 'relu' },
  { kind: 'dense', name: 'head', weight: head, shape: [UNITS, OUT] },
];
const built = performance.now();

const report = await balance(net, { backend, maxCycles: 1, tolerance: 0 });
const balanced = performance.now();

const failures: string[] = [];
const scales = report.scales[0].scales;
const sample = [0, 1, 63, 128, 200, 255];
for (const u of sample) {
  let a = 0;
  for (let r = 0; r < ROWS; r++) a += seed[(r * UNITS + u) % PERIOD] ** 2;
  let b = 0;
  for (let k = 0; k < OUT; k++) b += headBefore[u * OUT + k] ** 2;
  const d = (b / a) ** 0.25;
  if (!(Math.abs(scales[u] - d) <= 1e-6 * d)) failures.push(`unit ${u}: scale ${scales[u]}, float64 ${d}`);
  // Rows in both halves; the last ones lie above byte 2^31 of the engine's memory.
  for (const r of [0, 1, ROWS >> 1, ROWS - 1025, ROWS - 2, ROWS - 1]) {
    const i = r * UNITS + u;
    const want = Math.fround(seed[i % PERIOD] * scales[u]);
    if (big[i] !== want) failures.push(`big[${r}, ${u}] = ${big[i]}, want ${want}`);
  }
  for (let k = 0; k < OUT; k++) {
    const want = headBefore[u * OUT + k] / d;
    const got = head[u * OUT + k];
    if (!(Math.abs(got - want) <= 1e-6 * Math.abs(want))) failures.push(`head[${u}, ${k}] = ${got}, want ${want}`);
  }
}
const row = {
  case: 'dense-2GiB-plus',
  backend: report.backend,
  params: big.length + head.length,
  engineBytesAbove2GiB: (big.length + head.length) * 4 - 2 ** 31,
  buildMs: Math.round(built - started),
  balanceMs: Math.round(balanced - built),
  checkMs: Math.round(performance.now() - balanced),
  maxRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
  energyBefore: report.energyBefore,
  energyAfter: report.energyAfter,
  sampledUnits: sample.length,
  failures,
};
console.log(JSON.stringify(row));
if (failures.length) process.exit(1);
