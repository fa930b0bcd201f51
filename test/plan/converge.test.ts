import { describe, expect, it } from 'vitest';
import { balance } from '../../src/engine/enorm.js';
import { mlp } from '../../src/network/builders.js';
import { converge, stopsAt, type CycleOutcome } from '../../src/plan/converge.js';
import { resolveOptions } from '../../src/plan/options.js';
import { throwsENormError } from '../helpers/errors.js';

/** A loop whose cycles report the given outcomes, one after the other. */
function scripted(outcomes: CycleOutcome[]): () => CycleOutcome {
  let k = 0;
  return () => outcomes[k++];
}

describe('the stopping rule', () => {
  it('finite p stops on the relative energy change and ignores the scales', () => {
    const rule = { p: 2, tolerance: 1e-3, maxCycles: 10 };
    expect(stopsAt(rule, 100, { energy: 99.95, maxScaleChange: 5 })).toBe(true);
    expect(stopsAt(rule, 100, { energy: 99, maxScaleChange: 0 })).toBe(false);
  });

  it('p = Infinity stops on the largest scale change and ignores the energy', () => {
    const rule = { p: Infinity, tolerance: 1e-3, maxCycles: 10 };
    expect(stopsAt(rule, 100, { energy: 100, maxScaleChange: 2e-3 })).toBe(false);
    expect(stopsAt(rule, 100, { energy: 50, maxScaleChange: 1e-3 })).toBe(true);
  });

  it('converge reports every energy, the last maxScaleChange, and calls onCycle with the info', () => {
    const calls: unknown[] = [];
    const rule = { p: Infinity, tolerance: 0.01, maxCycles: 10, onCycle: (...args: unknown[]) => { calls.push(args); } };
    const out = converge(10, rule, scripted([{ energy: 9, maxScaleChange: 0.5 }, { energy: 9, maxScaleChange: 0.1 }, { energy: 9, maxScaleChange: 0.005 }]));
    expect(out).toEqual({ energies: [9, 9, 9], converged: true, maxScaleChange: 0.005 });
    expect(calls).toEqual([[1, 9, { maxScaleChange: 0.5 }], [2, 9, { maxScaleChange: 0.1 }], [3, 9, { maxScaleChange: 0.005 }]]);
    const capped = converge(10, { ...rule, maxCycles: 2, onCycle: undefined }, scripted([{ energy: 9, maxScaleChange: 0.5 }, { energy: 9, maxScaleChange: 0.1 }]));
    expect(capped).toEqual({ energies: [9, 9], converged: false, maxScaleChange: 0.1 });
  });
});

describe('p = Infinity as an option', () => {
  it('is accepted; -Infinity, NaN and finite p > 10 are not', () => {
    expect(resolveOptions({ p: Infinity }).p).toBe(Infinity);
    for (const p of [-Infinity, NaN, 11, 0]) expect(throwsENormError(() => resolveOptions({ p })).code).toBe('E_OPTION');
  });

  it('balance stops on maxScaleChange, reports it, and onCycle gets it for every p', async () => {
    for (const p of [2, Infinity]) {
      const net = mlp({ sizes: [6, 8, 8, 3], seed: 5 });
      const infos: number[] = [];
      const report = await balance(net, { p, tolerance: 1e-6, onCycle: (_k, _e, info) => infos.push(info.maxScaleChange) });
      expect(report.converged).toBe(true);
      expect(infos.length).toBe(report.cycles);
      expect(report.maxScaleChange).toBe(infos[infos.length - 1]);
      expect(infos[0]).toBeGreaterThan(0.01); // a random net is far from balanced
      if (p === Infinity) expect(report.maxScaleChange).toBeLessThanOrEqual(1e-6);
    }
  });
});
