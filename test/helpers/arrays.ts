/**
 * Array helpers for tests, with no runtime imports, so that the runtime suite (test/runtimes), which
 * runs on the built package in Deno, Bun, browsers and workerd, can use them too.
 */
import type { Layer, Network } from '../../src/network/layers.js';

/** Deep copy: every Float32Array (weights, biases, BN stats, companions) duplicated. */
export function cloneNetwork(net: Network): Network {
  const copy = (v: unknown): unknown => {
    if (v instanceof Float32Array) return v.slice();
    if (Array.isArray(v)) return v.map(copy);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, copy(x)]));
    return v;
  };
  return net.map((l) => copy(l) as Layer);
}

/** Every Float32Array of the network, in a fixed order (for "nothing changed" checks). */
export function allArrays(net: Network): Float32Array[] {
  const out: Float32Array[] = [];
  const walk = (v: unknown) => {
    if (v instanceof Float32Array) out.push(v);
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  net.forEach(walk);
  return out;
}

/** Bitwise snapshot of every array of the network. */
export function snapshot(net: Network): Uint32Array[] {
  return allArrays(net).map((a) => new Uint32Array(a.slice().buffer));
}

/** max |a - b| / max |b|. */
export function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return den === 0 ? num : num / den;
}
