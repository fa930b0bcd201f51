// The benchmarks' timing helpers: medians, and interleaved rounds whose ratios are taken per round.
import { describe, expect, it } from 'vitest';
import { interleavedMs, median, medianMs } from '../../bench/stats.js';

/** A clock that each timed function advances by its own cost, so timings are exact. */
function fakeClock() {
  let t = 0;
  return { now: () => t, spend: (ms: number) => { t += ms; } };
}

describe('median', () => {
  it('takes the upper middle of an even count and does not sort its input in place', () => {
    const xs = [3, 1, 4, 2];
    expect(median(xs)).toBe(3);
    expect(xs).toEqual([3, 1, 4, 2]);
    expect(median([5, 1, 9])).toBe(5);
  });
});

describe('medianMs', () => {
  it('runs the warm-up untimed, then the timed runs', async () => {
    let calls = 0;
    await medianMs(async () => { calls++; }, 4, 2);
    expect(calls).toBe(6);
  });
});

describe('interleavedMs', () => {
  it('runs every function once per round in the given order, warm-up rounds first', async () => {
    const order: string[] = [];
    const fn = (k: string) => async () => { order.push(k); };
    await interleavedMs({ a: fn('a'), b: fn('b'), c: fn('c') }, 'a', 2, 1);
    expect(order.join('')).toBe('abcabcabc');
  });

  it('takes each ratio within its round, so a load that moves between rounds cancels', async () => {
    const clock = fakeClock();
    // Round r runs at load 1, 3, 1, 3, 1: every cost scales with it; b always costs 1.5x the baseline.
    const loads = [1, 3, 1, 3, 1];
    let round = -1;
    const fns = {
      base: async () => { round++; clock.spend(10 * loads[round]); },
      b: async () => { clock.spend(15 * loads[round]); },
    };
    const r = await interleavedMs(fns, 'base', 5, 0, clock.now);
    expect(r.base).toEqual({ ms: 10, ratio: 1 });
    expect(r.b.ms).toBe(15);
    expect(r.b.ratio).toBeCloseTo(1.5, 12);
  });

  it('is not fooled where sequential medians would be: the load changes halfway through', async () => {
    const clock = fakeClock();
    let calls = 0;
    // Load 1 for the first 6 calls, 2 after; b costs 1.2x the baseline throughout.
    const load = () => (calls++ < 6 ? 1 : 2);
    const fns = { base: async () => clock.spend(100 * load()), b: async () => clock.spend(120 * load()) };
    const r = await interleavedMs(fns, 'base', 6, 0, clock.now);
    expect(r.b.ratio).toBeCloseTo(1.2, 12);
  });

  it('refuses a baseline it does not time, and no rounds', async () => {
    const fns = { a: async () => {} };
    await expect(interleavedMs(fns, 'z', 3, 0)).rejects.toThrow(/no baseline 'z'/);
    await expect(interleavedMs(fns, 'a', 0, 0)).rejects.toThrow(/rounds must be at least 1/);
  });
});
