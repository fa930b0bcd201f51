import { describe, expect, it } from 'vitest';
import { formatEta } from '../../bench/experiments/eta.js';

describe('formatEta', () => {
  it('carries rounded minutes into the hour instead of printing 60m', () => {
    expect(formatEta(2 * 3600 + 59.8 * 60)).toBe('3h00m');
    expect(formatEta(3 * 3600 + 7 * 60)).toBe('3h05m');
    expect(formatEta(3600)).toBe('1h00m');
  });
  it('carries rounded seconds into the minute and the hour', () => {
    expect(formatEta(119)).toBe('2m00s');
    expect(formatEta(3599)).toBe('1h00m');
    expect(formatEta(61)).toBe('1m00s');
    expect(formatEta(93)).toBe('1m35s');
    expect(formatEta(59.6)).toBe('1m00s');
  });
  it('shows short times to the second and never a negative time', () => {
    expect(formatEta(42.4)).toBe('42s');
    expect(formatEta(0)).toBe('0s');
    expect(formatEta(-3)).toBe('0s');
  });
  it("passes cli-progress's placeholders through", () => {
    expect(formatEta('NULL')).toBe('NULL');
    expect(formatEta('INF')).toBe('INF');
    expect(formatEta(Number.POSITIVE_INFINITY)).toBe('Infinity');
  });
});
