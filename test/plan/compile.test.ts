import { describe, expect, it } from 'vitest';
import { compilePlan } from '../../src/plan/compile.js';
import { mlp, resnet18, vgg } from '../../src/network/builders.js';
import type { Layer, Network } from '../../src/network/layers.js';
import { balance } from '../../src/engine/enorm.js';
import { ENormError } from '../../src/errors.js';
import { forward } from '../../src/network/forward.js';
import { balanceReference } from '../../src/reference/reference.js';
import { allArrays, maxRelDiff } from '../helpers/arrays.js';

const plan = (net: Network, residual: 'complete' | 'blocks' = 'complete', includeBiases = false) => compilePlan(net, { includeBiases, residual });
const f32 = (n: number) => new Float32Array(n).fill(0.5);

describe('compilePlan', () => {
  it('MLP (io): one group per hidden layer, kernel rows written, next kernel columns read', () => {
    const p = plan(mlp({ sizes: [4, 3, 2], seed: 1 }));
    expect(p.groups).toHaveLength(1);
    const [g] = p.groups;
    expect(g).toMatchObject({ name: 'dense1', size: 3, layers: ['dense1'] });
    // W1 [4, 3]: unit i = column i -> outer 4 rows of stride 3, contiguous units
    expect(g.writers[0]).toMatchObject({ tensor: 0, start: 0, outer: 4, outerStride: 3, count: 3, inner: 1, inCost: true });
    expect(g.writers[1]).toMatchObject({ tensor: 1, outer: 1, count: 3, inner: 1, inCost: false }); // bias, not counted by default
    // W2 [3, 2]: unit i = row i
    expect(g.readers[0]).toMatchObject({ tensor: 2, start: 0, outer: 1, count: 3, inner: 2 });
    expect(p.tensors.map((t) => [t.layer, t.role, t.cost])).toEqual([['dense1', 'weight', true], ['dense1', 'bias', false], ['dense2', 'weight', true], ['dense2', 'bias', false]]);
    expect(plan(mlp({ sizes: [4, 3, 2], seed: 1 }), 'complete', true).groups[0].writers[1].inCost).toBe(true);
  });

  it('MLP (oi): rows are units of the writer, columns of the reader', () => {
    const g = plan(mlp({ sizes: [4, 3, 2], layout: 'oi', seed: 1 })).groups[0];
    expect(g.writers[0]).toMatchObject({ outer: 1, count: 3, inner: 4 });
    expect(g.readers[0]).toMatchObject({ outer: 2, outerStride: 3, count: 3, inner: 1 });
  });

  it('flatten: channel c owns positions*... rows, channels-last vs channels-first', () => {
    const last = plan(vgg({ inputSize: 4, stages: [[3]], hidden: 5, bias: false })).groups[0];
    // conv (3 ch) -> pool -> 2x2 map -> flatten (h, w, c) -> dense [12, 5]: rows hw*3 + c
    expect(last.readers[0]).toMatchObject({ outer: 4, outerStride: 15, count: 3, inner: 5 });
    const first = plan(vgg({ inputSize: 4, stages: [[3]], hidden: 5, bias: false, layout: 'oihw' })).groups[0];
    // dense 'oi' [5, 12], rows of flatten (c, h, w): element o*12 + c*4 + hw
    expect(first.readers[0]).toMatchObject({ outer: 5, outerStride: 12, count: 3, inner: 4 });
  });

  it('ResNet-18 complete: 8 inner groups + 4 residual streams with every writer and reader', () => {
    const p = plan(resnet18({ width: 4 }));
    expect(p.groups).toHaveLength(12);
    const streams = p.groups.filter((g) => g.layers.length > 1);
    expect(streams.map((g) => g.layers)).toEqual([
      ['stem/bn', 'stage1.block1/bn2', 'stage1.block2/bn2'],
      ['stage2.block1/bn2', 'stage2.block1/proj/bn', 'stage2.block2/bn2'],
      ['stage3.block1/bn2', 'stage3.block1/proj/bn', 'stage3.block2/bn2'],
      ['stage4.block1/bn2', 'stage4.block1/proj/bn', 'stage4.block2/bn2'],
    ]);
    const name = (t: number) => `${p.tensors[t].layer}:${p.tensors[t].role}`;
    const s1 = streams[0];
    expect(s1.writers.map((w) => name(w.tensor))).toEqual(['stem/bn:gamma', 'stem/bn:beta', 'stage1.block1/bn2:gamma', 'stage1.block1/bn2:beta', 'stage1.block2/bn2:gamma', 'stage1.block2/bn2:beta']);
    expect(s1.readers.map((r) => name(r.tensor)).sort()).toEqual(['stage1.block1/conv1:weight', 'stage1.block2/conv1:weight', 'stage2.block1/conv1:weight', 'stage2.block1/proj:weight'].sort());
    expect(streams[3].readers.map((r) => name(r.tensor))).toContain('head:weight');
    // the convolutions feeding BN are never written: BN cancels their scale
    for (const g of p.groups) for (const w of g.writers) expect(p.tensors[w.tensor].role).not.toBe('weight');
    // the stem is read by nobody rescaled and writes nothing: the input side stays fixed
    expect(p.groups.every((g) => g.readers.every((r) => p.tensors[r.tensor].layer !== 'stem'))).toBe(true);
  });

  it("ResNet-18 'blocks': only the 8 inner groups, the streams reported", () => {
    const p = plan(resnet18({ width: 4 }), 'blocks');
    expect(p.groups.map((g) => g.name)).toEqual([1, 2, 3, 4].flatMap((s) => [`stage${s}.block1/bn1`, `stage${s}.block2/bn1`]));
    expect(p.barriers).toHaveLength(8);
    expect(p.barriers[0]).toMatchObject({ layer: 'stage1.block1/add' });
  });

  it('a non-homogeneous activation pins the units before it and is reported', () => {
    const net: Network = [
      { kind: 'dense', name: 'a', weight: f32(6), shape: [2, 3] },
      { kind: 'activation', name: 'squash', fn: 'tanh' },
      { kind: 'dense', name: 'b', weight: f32(12), shape: [3, 4] },
      { kind: 'relu' },
      { kind: 'dense', name: 'c', weight: f32(8), shape: [4, 2] },
    ];
    const p = plan(net);
    expect(p.groups.map((g) => g.name)).toEqual(['b']);
    expect(p.barriers).toEqual([{ layer: 'squash', reason: "activation 'tanh' is not positively homogeneous: the units of 'a' keep scale 1" }]);
  });

  it('concat: each branch group reads its own channel range of the consumer', () => {
    const net: Network = [
      { kind: 'input', name: 'x', shape: [3] },
      { kind: 'dense', name: 'a', inputs: ['x'], weight: f32(6), shape: [3, 2] },
      { kind: 'dense', name: 'b', inputs: ['x'], weight: f32(9), shape: [3, 3] },
      { kind: 'concat', name: 'cat', inputs: ['a', 'b'] },
      { kind: 'dense', name: 'c', weight: f32(10), shape: [5, 2] },
    ];
    const p = plan(net);
    expect(p.groups.map((g) => [g.name, g.readers[0].start, g.readers[0].count])).toEqual([['a', 0, 2], ['b', 2 * 2, 3]]);
  });

  it('batch norm without gamma cannot carry a scale (reported); the network input and outputs never move', () => {
    const net: Network = [
      { kind: 'dense', name: 'a', weight: f32(6), shape: [2, 3] },
      { kind: 'batch-norm', name: 'bn', beta: f32(3), mean: f32(3), variance: f32(3) },
      { kind: 'relu' },
      { kind: 'dense', name: 'b', weight: f32(6), shape: [3, 2] },
    ] as Layer[];
    const p = plan(net);
    expect(p.groups).toHaveLength(0);
    expect(p.barriers.map((b) => b.layer)).toEqual(['bn']);
  });

  it('an add with the network input keeps the stream fixed, and says so', () => {
    const net: Network = [
      { kind: 'input', name: 'x', shape: [3] },
      { kind: 'dense', name: 'a', weight: f32(9), shape: [3, 3] },
      { kind: 'add', name: 'sum', inputs: ['a', 'x'] },
      { kind: 'dense', name: 'b', weight: f32(6), shape: [3, 2] },
    ];
    const p = plan(net);
    expect(p.groups).toHaveLength(0);
    expect(p.barriers[0].layer).toBe('sum');
  });
});

describe('frozen layers (docs/ALGORITHM.md section 7, "Ownership")', () => {
  const freeze = <T extends Network>(net: T, names: Record<string, string>): T => {
    for (const l of net) if (l.name !== undefined && l.name in names) (l as { frozen?: string }).frozen = names[l.name];
    return net;
  };
  const bits = (a: Float32Array) => Array.from(new Uint32Array(a.slice().buffer));
  const groupLayers = (p: ReturnType<typeof plan>) => p.groups.map((g) => g.name);

  it('a frozen dense layer: its tensors leave the plan, the units it reads and writes keep scale 1, and it is reported', () => {
    const net = freeze(mlp({ sizes: [3, 4, 5, 6, 2], seed: 2 }), { dense2: 'trainable: false' });
    expect(groupLayers(plan(mlp({ sizes: [3, 4, 5, 6, 2], seed: 2 })))).toEqual(['dense1', 'dense2', 'dense3']);
    const p = plan(net);
    expect(groupLayers(p)).toEqual(['dense3']); // dense1's units are undone in dense2's kernel; dense2's land on it
    expect(p.tensors.some((t) => t.layer === 'dense2')).toBe(false);
    expect(p.barriers).toEqual([{ layer: 'dense2', reason: "layer 'dense2' is frozen (trainable: false): its tensors are not rescaled, and the units it reads and writes keep scale 1" }]);
  });

  it('a frozen batch norm writing a residual stream pins the whole stream; a frozen conv reading one does too', () => {
    const all = groupLayers(plan(resnet18({ width: 4 })));
    const stream1 = 'stream(stem/bn+stage1.block1/bn2+stage1.block2/bn2)';
    expect(all).toContain(stream1);
    for (const frozen of ['stage1.block1/bn2', 'stage1.block2/conv1', 'stem/bn']) {
      const p = plan(freeze(resnet18({ width: 4 }), { [frozen]: "shared with model 'B'" }));
      const left = groupLayers(p);
      expect(left).not.toContain(stream1);
      expect(left.filter((g) => g.startsWith('stream('))).toHaveLength(3); // the other three streams still move
      expect(p.groups.every((g) => [...g.writers, ...g.readers].every((v) => p.tensors[v.tensor].layer !== frozen))).toBe(true);
      expect(p.barriers.map((b) => b.layer)).toContain(frozen);
    }
  });

  it('engine and float64 reference: frozen tensors come back bit-identical, the rest balances, the function is kept', async () => {
    const make = () => freeze(vgg({ inputSize: 4, stages: [[3, 4, 4, 4]], hidden: 6, seed: 3 }), { s1c2: 'trainable: false', fc2: 'trainable: false' });
    const net = make();
    const frozenBefore = net.filter((l) => 'frozen' in l).flatMap((l) => allArrays([l]).map(bits));
    const input = Float64Array.from({ length: 2 * 4 * 4 * 3 }, (_, i) => Math.sin(i));
    const before = forward(net, [input], { batch: 2, inputShapes: [[4, 4, 3]] })[0];
    const ref = balanceReference(make(), { tolerance: 1e-10, maxCycles: 200 });
    const report = await balance(net, { tolerance: 1e-10, maxCycles: 200 });
    expect(net.filter((l) => 'frozen' in l).flatMap((l) => allArrays([l]).map(bits))).toEqual(frozenBefore);
    expect(report.barriers.map((b) => b.layer)).toEqual(expect.arrayContaining(['s1c2', 'fc2']));
    expect(ref.plan.groups.map((g) => g.name)).toEqual(['s1c3', 's1c4']); // s1c1 and fc1 feed frozen layers
    expect(report.energyAfter).toBeLessThan(0.99 * report.energyBefore); // the non-frozen part still balances
    expect(ref.energies[ref.energies.length - 1]).toBeLessThan(0.99 * ref.energyBefore);
    expect(Math.abs(report.energyAfter - ref.energies[ref.energies.length - 1])).toBeLessThan(1e-4 * ref.energyBefore);
    const after = forward(net, [input], { batch: 2, inputShapes: [[4, 4, 3]] })[0];
    expect(maxRelDiff(after, before)).toBeLessThan(1e-5);
  });

  it('a frozen field on a layer without tensors, or one that is not a one-line reason, is E_OPTION naming the layer', async () => {
    const cases: [Network, RegExp][] = [
      [[{ kind: 'dense', name: 'a', weight: f32(6), shape: [2, 3] }, { kind: 'relu', name: 'r', frozen: 'x' } as unknown as Layer, { kind: 'dense', name: 'b', weight: f32(6), shape: [3, 2] }], /layer 'r' \(relu\): frozen applies only to dense, conv2d, depthwise-conv2d, conv2d-transpose, batch-norm/],
      [[{ kind: 'dense', name: 'a', weight: f32(6), shape: [2, 3], frozen: '' }], /layer 'a' \(dense\): frozen must be a non-empty one-line string/],
      [[{ kind: 'dense', name: 'a', weight: f32(6), shape: [2, 3], frozen: true as unknown as string }], /layer 'a' \(dense\): frozen must be .* got true/],
      [[{ kind: 'dense', name: 'a', weight: f32(6), shape: [2, 3], frozen: 'two\nlines' }], /frozen must be a non-empty one-line string/],
      [[{ kind: 'dense', name: 'a', weight: f32(6), shape: [2, 3], frozen: 10n as unknown as string }], /layer 'a' \(dense\): frozen must be a non-empty one-line string/],
    ];
    for (const [net, message] of cases) {
      const err = await balance(net).catch((e) => e);
      expect(err).toBeInstanceOf(ENormError);
      expect(err.code).toBe('E_OPTION');
      expect(err.message).toMatch(message);
      expect(allArrays(net).every((a) => a.every((x) => x === 0.5))).toBe(true);
    }
  });
});
