/** Counters for the fuzzers' summaries: how many cases, and a histogram of outcomes. */
export class Histogram {
  readonly counts = new Map<string, number>();
  total = 0;

  add(key: string): void {
    this.total++;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  /** The `top` most frequent keys, one per line, with count and share. */
  format(title: string, top = 25): string {
    const rows = [...this.counts].sort((a, b) => b[1] - a[1]);
    const lines = rows.slice(0, top).map(([k, n]) => `  ${String(n).padStart(6)}  ${((100 * n) / Math.max(1, this.total)).toFixed(1).padStart(5)}%  ${k}`);
    if (rows.length > top) lines.push(`  ... ${rows.length - top} more classes`);
    return `${title} (${this.total}):\n${lines.join('\n')}`;
  }
}

/** The fuzz seed: ENORM_FUZZ_SEED when set (to replay a failure), else random, so CI explores new cases. */
export function fuzzSeed(): number {
  const env = process.env.ENORM_FUZZ_SEED;
  if (env !== undefined && env !== '') {
    const s = Number(env);
    if (!Number.isInteger(s)) throw new Error(`ENORM_FUZZ_SEED must be an integer, got '${env}'`);
    return s;
  }
  return Math.floor(Math.random() * 2 ** 31);
}

/** The number of cases: `fallback`, unless the environment variable `name` says otherwise. */
export function fuzzRuns(fallback: number, name = 'ENORM_FUZZ_RUNS'): number {
  const env = process.env[name];
  const n = env ? Number(env) : fallback;
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a whole number >= 1, got '${env}'`);
  return n;
}
