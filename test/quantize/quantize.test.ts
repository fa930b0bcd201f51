import { describe, expect, it } from 'vitest';
import { maxLevel, quantize, quantScales, SqnrAccumulator, sqnrDb, weightSqnr } from '../../src/quantize/quantize.js';

const close = (a: ArrayLike<number>, b: number[]) => {
  expect(a.length).toBe(b.length);
  b.forEach((v, i) => expect(a[i]).toBeCloseTo(v, 12));
};

describe('symmetric round-to-nearest quantisation', () => {
  it('levels: 127 for int8, 7 for int4; bad widths are E_OPTION', () => {
    expect(maxLevel(8)).toBe(127);
    expect(maxLevel(4)).toBe(7);
    expect(() => maxLevel(1)).toThrow(/bits must be/);
    expect(() => maxLevel(4.5)).toThrow(/bits must be/);
  });

  it('int4 per tensor, by hand: scale 1/7, -3.5 rounds away from zero to -4', () => {
    const w = [1, -0.5, 0.26, 0.1];
    close(quantScales(w, 4), [1 / 7]);
    // w / scale = 7, -3.5, 1.82, 0.7 -> 7, -4, 2, 1
    close(quantize(w, 4), [1, -4 / 7, 2 / 7, 1 / 7]);
    const noise = (0.5 - 4 / 7) ** 2 + (0.26 - 2 / 7) ** 2 + (0.1 - 1 / 7) ** 2;
    const power = 1 + 0.25 + 0.26 ** 2 + 0.01;
    expect(weightSqnr(w, 4)).toBeCloseTo(10 * Math.log10(power / noise), 10);
    expect(weightSqnr(w, 4)).toBeCloseTo(22.42, 2);
  });

  it('int4 per output channel, by hand: each channel has its own scale', () => {
    // a dense [in=2, out=2] kernel in 'io' layout: the channel of element i is i % 2
    const w = [4, 1, 2, 0.5];
    const channel = (i: number) => i % 2;
    close(quantScales(w, 4, 2, channel), [4 / 7, 1 / 7]);
    // channel 0: 4 -> 7 levels, 2 -> 3.5 -> 4 levels of 4/7; channel 1: 1 -> 7, 0.5 -> 4 levels of 1/7
    close(quantize(w, 4, 2, channel), [4, 1, 16 / 7, 4 / 7]);
    // per tensor (scale 4/7) the small channel loses far more: 1 -> 1.75 -> 2 levels, 0.5 -> 0.875 -> 1
    close(quantize(w, 4), [4, 8 / 7, 16 / 7, 4 / 7]);
    expect(weightSqnr(w, 4, 2, channel)).toBeGreaterThan(weightSqnr(w, 4));
  });

  it('int8 of a tensor on the grid is exact (Infinity dB), and an all-zero tensor too', () => {
    expect(weightSqnr([127, -127, 3, 0], 8)).toBe(Infinity);
    expect(weightSqnr([0, 0, 0], 8)).toBe(Infinity);
    close(quantize([0, 0], 4), [0, 0]);
    // an all-zero channel next to a non-zero one keeps its zeros
    close(quantize([0, 2, 0, 1], 4, 2, (i) => i % 2), [0, 2, 0, 8 / 7]); // channel 1: scale 2/7, 1 -> 3.5 -> 4 levels
  });

  it('more bits, higher SQNR: about 6 dB per bit on a spread of values', () => {
    const w = Array.from({ length: 1000 }, (_, i) => Math.sin(i * 1.7) * (1 + (i % 7)));
    const db8 = weightSqnr(w, 8);
    const db4 = weightSqnr(w, 4);
    expect(db8 - db4).toBeGreaterThan(18);
    expect(db8 - db4).toBeLessThan(30);
  });

  it('sqnrDb and its accumulator agree over chunks', () => {
    const x = [1, 2, 3, 4];
    const y = [1.1, 2, 2.9, 4];
    expect(sqnrDb(x, y)).toBeCloseTo(10 * Math.log10(30 / 0.02), 10);
    const acc = new SqnrAccumulator();
    acc.add(x.slice(0, 2), y.slice(0, 2));
    acc.add(x.slice(2), y.slice(2));
    expect(acc.db).toBeCloseTo(sqnrDb(x, y), 12);
    expect(sqnrDb(x, x)).toBe(Infinity);
  });
});
