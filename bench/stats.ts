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
