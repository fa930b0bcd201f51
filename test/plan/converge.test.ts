// The one convergence loop (src/plan/converge.ts): the fixed-point distance estimate, the energy
// rule, omega = 'auto' (SOR, docs/ALGORITHM.md 3c), and balance() on a deep badly scaled chain.
import { describe, expect, it } from 'vitest';
import { deepChain } from '../../bench/deep-chain.js';
import { balance, ENorm } from '../../src/engine/enorm.js';
import { mlp, resnet18 } from '../../src/network/builders.js';
import { converge, distanceEstimate, relaxable, type CycleOutcome, type StoppingRule } from '../../src/plan/converge.js';
import { resolveOptions } from '../../src/plan/options.js';
import { balanceReference } from '../../src/reference/reference.js';
import { throwsENormError } from '../helpers/errors.js';

/** A loop whose cycles report the given outcomes, one after the other (recording the omegas asked for). */
function scripted(outcomes: CycleOutcome[], omegas: number[] = []): (omega: number) => CycleOutcome {
  let k = 0;
  return (omega) => {
    omegas.push(omega);
    return outcomes[k++];
  };
}
const rule = (o: Partial<StoppingRule>): StoppingRule => ({ p: 2, c: 1, tolerance: 1e-3, maxCycles: 10, stopOn: 'fixed-point', omega: 1, ...o });
/** Geometric steps a * r^k, energies falling. */
const geometric = (a: number, r: number, n: number): CycleOutcome[] => Array.from({ length: n }, (_, k) => ({ energy: 10 - k * 1e-3, maxScaleChange: a * r ** k }));

describe('the distance estimate', () => {
  it('is step / (1 - rho) for geometric steps, Infinity while rho is unknown or >= 1, 0 after a zero step', () => {
    const steps = [0.1, 0.05, 0.025, 0.0125, 0.00625];
    expect(distanceEstimate(steps.slice(0, 1))).toBe(Infinity);
    expect(distanceEstimate(steps)).toBeCloseTo(0.00625 / 0.5, 12);
    expect(distanceEstimate([0.1, 0.2])).toBe(Infinity);
    expect(distanceEstimate([0.1, 0])).toBe(0);
    // SOR contracts no faster than omega - 1: the rate is at least that.
    expect(distanceEstimate(steps, 1.8)).toBeCloseTo(0.00625 / 0.2, 12);
  });
});

describe('the loop', () => {
  it('fixed-point: stops once the estimate is within tolerance, not when the steps are', () => {
    // rho = 0.9: step 1e-4 is a distance of 1e-3.
    const out = converge(10, rule({ tolerance: 1e-3, maxCycles: 100 }), scripted(geometric(0.01, 0.9, 100)));
    expect(out.converged).toBe(true);
    expect(out.distance).toBeLessThanOrEqual(1e-3);
    expect(out.maxScaleChange).toBeLessThan(1e-4 * 1.0001);
    expect(out.maxScaleChange).toBeGreaterThan(0.9e-4);
  });

  it('energy: stops on the relative energy change, with the scales still moving', () => {
    const out = converge(10, rule({ stopOn: 'energy', tolerance: 1e-3 }), scripted([{ energy: 9, maxScaleChange: 0.5 }, { energy: 8.9999, maxScaleChange: 0.4 }]));
    expect(out).toMatchObject({ energies: [9, 8.9999], converged: true, maxScaleChange: 0.4 });
  });

  it('reports every energy, calls onCycle with maxScaleChange, distance and omega; maxCycles caps it', () => {
    const calls: unknown[] = [];
    const r = rule({ maxCycles: 2, onCycle: (...args: unknown[]) => { calls.push(args); } });
    const out = converge(10, r, scripted([{ energy: 9, maxScaleChange: 0.5 }, { energy: 9, maxScaleChange: 0.25 }]));
    expect(out).toEqual({ energies: [9, 9], converged: false, maxScaleChange: 0.25, distance: 0.5, omega: 1 });
    expect(calls).toEqual([[1, 9, { maxScaleChange: 0.5, distance: Infinity, omega: 1 }], [2, 9, { maxScaleChange: 0.25, distance: 0.5, omega: 1 }]]);
  });

  it('stops with converged false when the steps sit at the float32 floor without a new low', () => {
    const flat = Array.from({ length: 500 }, (_, k) => ({ energy: 1, maxScaleChange: 1e-7 * (1 + (k % 3) / 10) }));
    const out = converge(1, rule({ tolerance: 1e-12, maxCycles: 500 }), scripted(flat));
    expect(out.converged).toBe(false);
    expect(out.energies.length).toBeLessThan(60);
  });

  it("omega 'auto': plain cycles first, then the SOR factor of the measured rate; an energy rise halves omega - 1", () => {
    const omegas: number[] = [];
    // rho = 0.96 steps, energy falling: 2 / (1 + sqrt(0.04)) = 1.667 after the warm-up.
    converge(10, rule({ omega: 'auto', tolerance: 0, maxCycles: 12 }), scripted(geometric(0.1, 0.96, 12), omegas));
    expect(omegas.slice(0, 6)).toEqual([1, 1, 1, 1, 1, 1]);
    expect(omegas[6]).toBeCloseTo(2 / (1 + Math.sqrt(1 - 0.96)), 9);
    const rising = geometric(0.1, 0.96, 12).map((o, k) => (k === 7 ? { ...o, energy: 11 } : o));
    const seen: number[] = [];
    converge(10, rule({ omega: 'auto', tolerance: 0, maxCycles: 12 }), scripted(rising, seen));
    expect(seen[8]).toBeCloseTo(1 + (seen[7] - 1) / 2, 12);
  });

  it("omega 'auto' is 1 where the descent argument does not hold: c != 1, p = Infinity", () => {
    expect([relaxable(2, 1), relaxable(1, 1), relaxable(2, 1.2), relaxable(Infinity, 1)]).toEqual([true, true, false, false]);
    for (const o of [{ c: 1.2 }, { p: Infinity }]) {
      const omegas: number[] = [];
      converge(10, rule({ ...o, omega: 'auto', tolerance: 0, maxCycles: 12 }), scripted(geometric(0.1, 0.96, 12), omegas));
      expect(omegas.every((w) => w === 1)).toBe(true);
    }
  });
});

describe('options', () => {
  it('p = Infinity is accepted; -Infinity, NaN and finite p > 10 are not', () => {
    expect(resolveOptions({ p: Infinity }).p).toBe(Infinity);
    for (const p of [-Infinity, NaN, 11, 0]) expect(throwsENormError(() => resolveOptions({ p })).code).toBe('E_OPTION');
  });

  it("stopOn and omega: defaults 'fixed-point' and 'auto'; anything else is E_OPTION", () => {
    expect(resolveOptions({})).toMatchObject({ stopOn: 'fixed-point', omega: 'auto' });
    expect(resolveOptions({ stopOn: 'energy', omega: 1.5 })).toMatchObject({ stopOn: 'energy', omega: 1.5 });
    for (const o of [{ stopOn: 'scales' }, { omega: 2 }, { omega: 0 }, { omega: 'fast' }, { omega: NaN }]) {
      expect(throwsENormError(() => resolveOptions(o as never)).code).toBe('E_OPTION');
    }
  });

  it('ENorm.cycle(omega) refuses omega outside (0, 2)', async () => {
    const engine = await ENorm.create(mlp({ sizes: [4, 3, 2], seed: 1 }));
    for (const w of [0, 2, -1, NaN]) expect(throwsENormError(() => engine.cycle(w)).code).toBe('E_OPTION');
    engine.dispose();
  });
});

/** Largest |log(D / D*)| over every unit: the scale distance to the float64 minimiser. */
const scaleDistance = (a: { scales: Float64Array }[], best: Float64Array[]) =>
  Math.max(...a.map((g, i) => Math.max(...Array.from(g.scales, (x, u) => Math.abs(Math.log(x / best[i][u]))))));

describe('balance on a deep, badly scaled chain (16 layers, width 64)', () => {
  const make = () => deepChain({ depth: 16, width: 64, spread: 1, seed: 3 });
  const best = balanceReference(make(), { tolerance: 1e-13, maxCycles: 20000 }).scales;

  it('SOR reaches 1e-5 of the minimiser in at most a quarter of the plain cycles, and converged means close', async () => {
    const cyclesTo = async (omegas: (k: number) => number) => {
      const engine = await ENorm.create(make(), { backend: 'js' });
      for (let k = 1; k <= 2000; k++) {
        engine.cycle(omegas(k));
        if (scaleDistance(engine.scales(), best) <= 1e-5) return k;
      }
      return Infinity;
    };
    const plain = await cyclesTo(() => 1);
    const seen: number[] = [];
    const report = await balance(make(), { backend: 'js', onCycle: (_, __, info) => seen.push(info.omega) });
    const relaxed = await cyclesTo((k) => seen[k - 1] ?? seen[seen.length - 1]);
    expect(plain).toBeGreaterThan(150);
    expect(relaxed * 4).toBeLessThanOrEqual(plain);
    expect(report.omega).toBeGreaterThan(1.5);
    expect(report.converged).toBe(true);
    expect(report.distance).toBeLessThanOrEqual(1e-6);
    expect(scaleDistance(report.scales, best)).toBeLessThanOrEqual(1e-6);
  });

  it("stopOn 'energy' at tolerance 1e-9 stops far from the minimiser; the fixed-point rule does not", async () => {
    const byEnergy = await balance(make(), { backend: 'js', omega: 1, stopOn: 'energy', tolerance: 1e-9 });
    expect(byEnergy.converged).toBe(true);
    expect(scaleDistance(byEnergy.scales, best)).toBeGreaterThan(1e-5);
    const byPoint = await balance(make(), { backend: 'js', omega: 1, tolerance: 1e-5 });
    expect(scaleDistance(byPoint.scales, best)).toBeLessThanOrEqual(1e-5);
  });

  it('the energy never rises over a cycle with SOR (c = 1), on the chain and a ResNet', async () => {
    for (const net of [make(), resnet18({ width: 4, seed: 2 })]) {
      const report = await balance(net, { backend: 'js', omega: 1.8, tolerance: 0, maxCycles: 60 });
      let prev = report.energyBefore;
      for (const e of report.energies) {
        expect(e).toBeLessThanOrEqual(prev * (1 + 1e-6));
        prev = e;
      }
    }
  });
});
