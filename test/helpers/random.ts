export { mulberry32 } from '../../src/network/random.js';

/** n f32 values uniform in (-scale, scale). */
export function randomFloat32(n: number, rng: () => number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (2 * rng() - 1) * scale;
  return out;
}
