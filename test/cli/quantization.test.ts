import { describe, expect, it } from 'vitest';
import { DeviationCheck } from '../../src/cli/check.js';
import { medianGain, quantizationReport, quantizedNetwork, quantSnapshot } from '../../src/cli/quantization.js';
import type { Network } from '../../src/network/layers.js';
import { weightSqnr } from '../../src/quantize/quantize.js';

// Two output channels of very different ranges: channel 0 in [-8, 8], channel 1 in [-0.1, 0.1].
const big = [8, -3, 5, 1];
const small = [0.1, -0.03, 0.07, 0.01];

describe('per-channel groups follow the layout', () => {
  it("ONNX Conv 'oihw' [out, in, kh, kw]: the first axis is the channel", () => {
    const net: Network = [
      { kind: 'input', shape: [1, 2, 2] },
      { kind: 'conv2d', name: 'conv', layout: 'oihw', shape: [2, 1, 2, 2], weight: Float32Array.from([...big, ...small]) },
    ];
    const s = quantSnapshot(net, { bits: 4, perChannel: true }, undefined);
    const expected = 10 * Math.log10((sum2(big) + sum2(small)) / (noise(big, 4) + noise(small, 4)));
    expect(s.tensors[0]).toBeCloseTo(expected, 9);
    expect(s.tensors[0]).toBeGreaterThan(quantSnapshot(net, { bits: 4, perChannel: false }, undefined).tensors[0]);
  });

  it("tfjs Conv2D 'hwio' [kh, kw, in, out]: the last axis is the channel", () => {
    const interleaved = big.flatMap((b, i) => [b, small[i]]); // element 2t is channel 0, 2t+1 channel 1
    const net: Network = [
      { kind: 'input', shape: [2, 2, 1] },
      { kind: 'conv2d', name: 'conv', shape: [2, 2, 1, 2], weight: Float32Array.from(interleaved) },
    ];
    const expected = 10 * Math.log10((sum2(big) + sum2(small)) / (noise(big, 4) + noise(small, 4)));
    expect(quantSnapshot(net, { bits: 4, perChannel: true }, undefined).tensors[0]).toBeCloseTo(expected, 9);
    expect(quantSnapshot(net, { bits: 4, perChannel: false }, undefined).tensors[0]).toBeCloseTo(weightSqnr(interleaved.map(Math.fround), 4), 9);
  });
});

describe('the quantised network and the report', () => {
  const net: Network = [
    { kind: 'input', shape: [2] },
    { kind: 'dense', name: 'a', shape: [2, 2], weight: Float32Array.from([1, 0.3, -0.6, 0.2]), bias: Float32Array.from([0.1, 0.2]) },
    { kind: 'relu' },
    { kind: 'dense', shape: [2, 1], weight: Float32Array.from([0.5, -1]) },
  ];

  it('quantises kernels into copies (biases and the original untouched); output SQNR on the check inputs', () => {
    const q = quantizedNetwork(net, { bits: 4, perChannel: false });
    expect(Array.from((q[1] as { weight: Float32Array }).weight)).toEqual([1, 2 / 7, -4 / 7, 1 / 7].map(Math.fround));
    expect(Array.from((net[1] as { weight: Float32Array }).weight)).toEqual([1, 0.3, -0.6, 0.2].map(Math.fround));
    expect((q[1] as { bias: Float32Array }).bias).toBe((net[1] as { bias: Float32Array }).bias);
    const check = new DeviationCheck(net, [2], 16, 1, 'm', 'shape');
    expect(check.outputSqnr(net, net)).toBe(Infinity);
    const s = quantSnapshot(net, { bits: 4, perChannel: false }, check);
    expect(s.output).toBeGreaterThan(5);
    expect(s.output).toBeLessThan(60);
  });

  it('names from the format by array identity, else <layer>/weight; the median gain', () => {
    const before = { tensors: [20, 30], output: 25 };
    const after = { tensors: [23, 31], output: 28 };
    const r = quantizationReport(net, { bits: 8, perChannel: false }, before, after, 16, [{ name: 'fc_a.kernel', data: (net[1] as { weight: Float32Array }).weight }]);
    expect(r.tensors).toEqual([
      { name: 'fc_a.kernel', layer: 'a', sqnrBefore: 20, sqnrAfter: 23 },
      { name: '#3/weight', layer: '#3', sqnrBefore: 30, sqnrAfter: 31 },
    ]);
    expect(r).toMatchObject({ outputSamples: 16, outputSqnrBefore: 25, outputSqnrAfter: 28 });
    expect(medianGain(r)).toBe(2);
    expect(medianGain({ ...r, tensors: [{ ...r.tensors[0], sqnrBefore: Infinity, sqnrAfter: Infinity }] })).toBeNaN();
  });
});

describe('the runtime path of the deviation check', () => {
  it('compares what the runner answers; a runner that answers fewer outputs is a NaN deviation', async () => {
    const net: Network = [{ kind: 'input', shape: [2] }, { kind: 'dense', shape: [2, 1], weight: Float32Array.from([1, 1]) }];
    const check = new DeviationCheck(net, [2], 4, 1, 'm', 'shape');
    await check.recordBeforeWith(async (x, n) => Float32Array.from({ length: n }, (_, b) => x[2 * b] + x[2 * b + 1]));
    expect((await check.compareAfterWith(async (x, n) => Float32Array.from({ length: n }, (_, b) => x[2 * b] + x[2 * b + 1]))).absolute).toBe(0);
    const off = await check.compareAfterWith(async (x, n) => Float32Array.from({ length: n }, (_, b) => x[2 * b] + x[2 * b + 1] + 0.5));
    expect(off.absolute).toBeCloseTo(0.5, 6);
    expect((await check.compareAfterWith(async () => new Float32Array(1))).absolute).toBeNaN();
  });
});

function sum2(w: number[]) { return w.reduce((s, x) => s + Math.fround(x) ** 2, 0); }
/** sum (w - Q(w))^2 at `bits`, computed by hand: scale max|w| / (2^(b-1) - 1), round half away from zero. */
function noise(w: number[], bits: number) {
  const f = w.map(Math.fround);
  const scale = Math.max(...f.map(Math.abs)) / (2 ** (bits - 1) - 1);
  return f.reduce((s, x) => s + (x - scale * Math.sign(x) * Math.round(Math.abs(x) / scale)) ** 2, 0);
}
