/** Seeded PRNG (mulberry32): uniform in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal samples (Box-Muller) from a uniform source. */
export function gaussian(rng: () => number): () => number {
  return () => {
    const u = 1 - rng();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng());
  };
}

/** n samples of N(0, std^2) as float32. */
export function normalArray(n: number, std: number, rng: () => number): Float32Array {
  const g = gaussian(rng);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = std * g();
  return a;
}

/** n samples uniform in [lo, hi) as float32. */
export function uniformArray(n: number, lo: number, hi: number, rng: () => number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * rng();
  return a;
}
