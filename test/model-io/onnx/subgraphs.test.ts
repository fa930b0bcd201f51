/**
 * Nodes with subgraphs (If, Loop, Scan) are cuts: their listed inputs and every outer tensor their
 * subgraphs read are pinned (scale 1), the weights inside are never touched, and the balanced file
 * computes the same function in onnxruntime. Checked on a synthetic If and on the three Silero VAD
 * models shipped in @ricky0123/vad-web (real PyTorch exports).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { balance } from '../../../src/index.js';
import { readOnnxModel, writeOnnxModel } from '../../../src/model-io/onnx/index.js';
import { buildOnnx, init, type GraphSpec, type ModelSpec, type NodeSpec } from '../../helpers/onnx-builder.js';
import { randomFeed, runFeeds, type Feed } from '../../helpers/onnx-feeds.js';
import { bytesOutside, patchedRanges, relativeDeviation } from '../../helpers/onnx-run.js';

const gemm = (i: number, input: string, output: string): NodeSpec => ({ op: 'Gemm', inputs: [input, `w${i}`, `b${i}`], outputs: [output], attrs: { transB: { i: 1 } } });

/**
 * x -> Gemm = h0 -> Relu -> Gemm -> Relu -> Gemm -> y, and an If (cond from two int64 constants)
 * whose branches read h0 without listing it: then m = h0 * c (c an initializer of the branch),
 * else m = Relu(h0). Only the subgraphs read h0 besides the Relu, so only the scope pin keeps
 * the first Gemm's units at scale 1.
 */
function ifModel(branch: (g: GraphSpec) => GraphSpec = (g) => g): ModelSpec {
  const thenBranch: GraphSpec = { nodes: [{ op: 'Mul', inputs: ['h0', 'c'], outputs: ['t'] }], initializers: [init('c', [8], 50)], outputs: [{ name: 't', dims: ['N', 8] }] };
  const elseBranch: GraphSpec = { nodes: [{ op: 'Relu', inputs: ['h0'], outputs: ['e'] }], outputs: [{ name: 'e', dims: ['N', 8] }] };
  return {
    inputs: [{ name: 'x', dims: ['N', 8] }],
    outputs: [{ name: 'm', dims: ['N', 8] }, { name: 'y', dims: ['N', 4] }],
    initializers: [
      init('w0', [8, 8], 41), init('b0', [8], 42), init('w1', [8, 8], 43), init('b1', [8], 44), init('w2', [4, 8], 45), init('b2', [4], 46),
      { name: 'k1', dims: [], data: [1], type: 'int64' }, { name: 'k2', dims: [], data: [1], type: 'int64' },
    ],
    nodes: [
      gemm(0, 'x', 'h0'), { op: 'Relu', inputs: ['h0'], outputs: ['a0'] },
      { op: 'Equal', inputs: ['k1', 'k2'], outputs: ['cond'] },
      { op: 'If', name: 'branchy', inputs: ['cond'], outputs: ['m'], attrs: { then_branch: { g: branch(thenBranch) }, else_branch: { g: elseBranch } } },
      gemm(1, 'a0', 'h1'), { op: 'Relu', inputs: ['h1'], outputs: ['a1'] }, gemm(2, 'a1', 'y'),
    ],
  };
}

const weight = (model: ReturnType<typeof readOnnxModel>, name: string) => model.weights.find((w) => w.name === name);

describe('ONNX nodes with subgraphs', () => {
  it('an If whose branches read a Gemm output is a cut that pins the Gemm; the balanced file agrees in onnxruntime', async () => {
    const { bytes } = buildOnnx(ifModel());
    const model = readOnnxModel(bytes);
    expect(model.barriers).toContainEqual({ node: 'branchy', op: 'If', reason: expect.stringMatching(/with subgraphs .* the 1 outer tensor its subgraphs read keep scale 1/) });
    expect(model.network.find((l) => l.kind === 'identity' && l.inputs?.[0] === 'h0')).toBeDefined();
    expect(model.weights.map((w) => w.name).sort()).toEqual(['b0', 'b1', 'b2', 'w0', 'w1', 'w2']); // not the branch's c
    const w0 = Float32Array.from(weight(model, 'w0')!.data);
    const b0 = Float32Array.from(weight(model, 'b0')!.data);
    const w1 = Float32Array.from(weight(model, 'w1')!.data);
    await balance(model.network, { backend: 'js' });
    expect(weight(model, 'w0')!.data).toEqual(w0); // h0's units keep scale 1
    expect(weight(model, 'b0')!.data).toEqual(b0);
    expect(weight(model, 'w1')!.data).not.toEqual(w1); // the rest was balanced
    const out = writeOnnxModel(model);
    expect(bytesOutside(bytes, out, patchedRanges(model))).toBe(0); // the branch's c among them
    const feeds = { x: randomFeed([4, 8], 7) };
    const [before, after] = [await runFeeds(bytes, feeds), await runFeeds(out, feeds)];
    for (const name of ['m', 'y']) expect(relativeDeviation(before.get(name)!, after.get(name)!)).toBeLessThan(1e-4);
  });

  it('an outer tensor read only in a nested subgraph is pinned too', () => {
    // then_branch holds an If whose own branches read h0: two levels down.
    const nested = (g: GraphSpec): GraphSpec => ({
      nodes: [{ op: 'If', inputs: ['cond'], outputs: ['t'], attrs: { then_branch: { g }, else_branch: { g: { ...g, initializers: [init('c2', [8], 51)], nodes: [{ op: 'Mul', inputs: ['h0', 'c2'], outputs: ['t'] }] } } } }],
      outputs: [{ name: 't', dims: ['N', 8] }],
    });
    const model = readOnnxModel(buildOnnx(ifModel(nested)).bytes);
    expect(model.network.find((l) => l.kind === 'identity' && l.inputs?.[0] === 'h0')).toBeDefined();
    expect(model.barriers.find((b) => b.op === 'If')?.reason).toMatch(/the 1 outer tensor /); // cond is listed, h0 is not
  });

  it('subgraphs nested deeper than 8 are E_MODEL; a subgraph reading a name no scope defines is E_MODEL', () => {
    const deep = (g: GraphSpec, levels: number): GraphSpec => levels === 0 ? g : deep({ nodes: [{ op: 'If', inputs: ['cond'], outputs: ['t'], attrs: { then_branch: { g }, else_branch: { g } } }], outputs: [{ name: 't' }] }, levels - 1);
    expect(() => readOnnxModel(buildOnnx(ifModel((g) => deep(g, 7))).bytes)).not.toThrow(); // 8 deep
    expect(() => readOnnxModel(buildOnnx(ifModel((g) => deep(g, 8))).bytes)).toThrow(expect.objectContaining({ code: 'E_MODEL', message: expect.stringMatching(/nest more than 8 deep/) }));
    const stray = (g: GraphSpec): GraphSpec => ({ ...g, nodes: [{ op: 'Mul', inputs: ['h0', 'nowhere'], outputs: ['t'] }] });
    expect(() => readOnnxModel(buildOnnx(ifModel(stray)).bytes)).toThrow(expect.objectContaining({ code: 'E_MODEL', message: expect.stringMatching(/reads 'nowhere'/) }));
  });
});

const VAD = 'node_modules/@ricky0123/vad-web/dist';

/** Random audio and state, and the sample rate 16000, for the model's real inputs. */
function vadFeeds(name: string, seed: number): Record<string, Feed> {
  const sr: Feed = { type: 'int64', dims: [], data: BigInt64Array.from([16000n]) };
  if (name === 'silero_vad_legacy') return { input: randomFeed([1, 512], seed), sr, h: randomFeed([2, 1, 64], seed + 1), c: randomFeed([2, 1, 64], seed + 2) };
  return { input: randomFeed([1, 512], seed), state: randomFeed([2, 1, 128], seed + 1), sr };
}

describe('Silero VAD (real PyTorch exports with If nodes)', () => {
  it.each(['silero_vad_legacy', 'silero_vad_v5', 'silero_vad_v6'])('%s: read, balanced, written, and equal in onnxruntime', async (name) => {
    const bytes = new Uint8Array(readFileSync(`${VAD}/${name}.onnx`));
    const model = readOnnxModel(bytes);
    expect(model.barriers.some((b) => b.op === 'If' && /with subgraphs/.test(b.reason))).toBe(true);
    // Every weight lives in (or is read only by) the If branches: nothing is rescaled.
    expect(model.weights).toEqual([]);
    await balance(model.network, { backend: 'js' });
    const out = writeOnnxModel(model);
    expect(out).toEqual(bytes);
    const feeds = vadFeeds(name, 11);
    const [before, after] = [await runFeeds(bytes, feeds), await runFeeds(out, feeds)];
    expect([...before.keys()].length).toBeGreaterThan(1);
    for (const [k, v] of before) expect(relativeDeviation(v, after.get(k)!)).toBeLessThan(1e-4);
  });
});
