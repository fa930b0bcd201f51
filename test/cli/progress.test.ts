import { describe, expect, it } from 'vitest';
import { progressFor, PROGRESS_INTERVAL_MS } from '../../src/cli/progress.js';

function recorder(o: { tty: boolean; quiet: boolean; p?: number }) {
  let text = '';
  let clock = 0;
  const progress = progressFor((t) => { text += t; }, { p: 2, ...o, now: () => clock });
  return { progress, tick: (ms: number) => { clock += ms; }, text: () => text };
}

describe('progress on stderr', () => {
  it('phases on their own lines, cycles rewritten with \\r and throttled to 10 a second, the last one always shown', () => {
    const r = recorder({ tty: true, quiet: false });
    r.progress.phase('reading m.json');
    for (let k = 1; k <= 100; k++) { r.tick(10); r.progress.cycle(k, 1000 / k); } // 100 cycles in 1 s
    r.progress.done();
    const text = r.text();
    expect(text.startsWith('enorm: reading m.json (0.0 s)\n')).toBe(true);
    const cycles = text.split('\r').slice(1);
    // one at the start, then one per 100 ms, and cycle 100 at the end
    expect(cycles.length).toBeGreaterThanOrEqual(10);
    expect(cycles.length).toBeLessThanOrEqual(12);
    expect(cycles[0]).toMatch(/^enorm: cycle 1 {2}energy 1\.000000e\+3 {2}0\.0 s/);
    expect(cycles[cycles.length - 1]).toMatch(/^enorm: cycle 100 {2}energy 1\.000000e\+1 {2}1\.0 s\x1b\[K\n$/);
    expect(PROGRESS_INTERVAL_MS).toBe(100);
  });

  it('p = ∞ shows the largest scale change instead of the energy', () => {
    const r = recorder({ tty: true, quiet: false, p: Infinity });
    r.progress.cycle(3, 0.7, { maxScaleChange: 0.0125 });
    r.progress.done();
    expect(r.text()).toMatch(/cycle 3 {2}largest scale change 1\.250e-2/);
  });

  it('a phase ends the cycle line first, and shows the last throttled cycle', () => {
    const r = recorder({ tty: true, quiet: false });
    r.progress.cycle(1, 5);
    r.progress.cycle(2, 4); // inside the interval: held back
    r.progress.phase('writing out');
    expect(r.text()).toMatch(/cycle 1 .*\renorm: cycle 2 .*\x1b\[K\nenorm: writing out/s);
  });

  it('writes nothing when stderr is not a terminal, or with --quiet', () => {
    for (const o of [{ tty: false, quiet: false }, { tty: true, quiet: true }]) {
      const r = recorder(o);
      r.progress.phase('reading');
      r.progress.cycle(1, 1);
      r.progress.done();
      expect(r.text()).toBe('');
    }
  });
});
