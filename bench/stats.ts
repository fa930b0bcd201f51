/** Medians and relative differences shared by the benchmarks and the experiments. */

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Median wall time in ms of `times` awaited runs of fn, after `warmup` untimed ones. */
export async function medianMs(fn: () => Promise<void>, times: number, warmup: number): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  const samples: number[] = [];
  for (let i = 0; i < times; i++) {
    const t = performance.now();
    await fn();
    samples.push(performance.now() - t);
  }
  return median(samples);
}

/** Over paired arrays, the largest max|a - b| / max|b| (max|a - b| where b is all zero). */
export function maxRelDiff(a: ArrayLike<number>[], b: ArrayLike<number>[]): number {
  let worst = 0;
  a.forEach((t, i) => {
    let num = 0;
    let den = 0;
    for (let k = 0; k < t.length; k++) {
      num = Math.max(num, Math.abs(t[k] - b[i][k]));
      den = Math.max(den, Math.abs(b[i][k]));
    }
    worst = Math.max(worst, den > 0 ? num / den : num);
  });
  return worst;
}

/** What interleavedMs gives for each timed function. */
export interface Interleaved {
  /** Median ms over rounds. */
  ms: number;
  /** Median over rounds of this round's ms / the baseline's ms in the same round. */
  ratio: number;
}

/**
 * Times several async functions in rounds, each once per round in the given order, after `warmup`
 * untimed rounds: load that drifts during a run (these machines are noisy) then weighs on every
 * function alike, and each ratio to `baseline` is taken within a round before the median.
 */
export async function interleavedMs(
  fns: Record<string, () => Promise<void>>,
  baseline: string,
  rounds: number,
  warmup: number,
  now: () => number = () => performance.now(),
): Promise<Record<string, Interleaved>> {
  const names = Object.keys(fns);
  if (!names.includes(baseline)) throw new Error(`interleavedMs: no baseline '${baseline}' among ${names.join(', ')}`);
  if (!(rounds >= 1)) throw new Error(`interleavedMs: rounds must be at least 1, got ${rounds}`);
  for (let r = 0; r < warmup; r++) for (const k of names) await fns[k]();
  const samples: Record<string, number[]> = Object.fromEntries(names.map((k) => [k, []]));
  for (let r = 0; r < rounds; r++) {
    for (const k of names) {
      const t = now();
      await fns[k]();
      samples[k].push(now() - t);
    }
  }
  const base = samples[baseline];
  return Object.fromEntries(names.map((k) => [k, { ms: median(samples[k]), ratio: median(samples[k].map((ms, r) => ms / base[r])) }]));
}
