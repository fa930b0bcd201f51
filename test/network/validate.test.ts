import { describe, expect, it } from 'vitest';
import { balance, ENorm } from '../../src/engine/enorm.js';
import { ENormError, type ENormErrorCode } from '../../src/errors.js';
import { mlp, resnet18, vgg } from '../../src/network/builders.js';
import type { Layer, Network } from '../../src/network/layers.js';
import { snapshot } from '../helpers/nets.js';

type Case = { name: string; code: ENormErrorCode; message: RegExp; make: () => Network; options?: Record<string, unknown> };

const dense = (nIn: number, nOut: number, extra: Partial<Layer> = {}): Layer =>
  ({ kind: 'dense', weight: new Float32Array(nIn * nOut).fill(0.5), shape: [nIn, nOut], ...extra }) as Layer;

const withMlp = (edit: (net: Network) => void) => () => {
  const net = mlp({ sizes: [6, 5, 4, 3], seed: 1, momentum: true });
  edit(net);
  return net;
};
const layer = <K extends Layer['kind']>(net: Network, i: number, kind: K) => {
  const l = net[i];
  if (l.kind !== kind) throw new Error(`layer ${i} is ${l.kind}`);
  return l as Extract<Layer, { kind: K }>;
};

const cases: Case[] = [
  { name: 'weight length vs shape', code: 'E_SHAPE', message: /layer 'dense2' \(dense\): weight has 20 elements, expected 25/, make: withMlp((n) => { layer(n, 2, 'dense').shape = [5, 5]; }) },
  { name: 'malformed shape', code: 'E_SHAPE', message: /layer 'dense1' \(dense\): shape must be 2 positive integers/, make: withMlp((n) => { (layer(n, 0, 'dense') as { shape: unknown }).shape = [6, 0]; }) },
  { name: 'bias length', code: 'E_SHAPE', message: /layer 'dense3' \(dense\): bias has 2 elements, expected 3/, make: withMlp((n) => { layer(n, 4, 'dense').bias = new Float32Array(2); }) },
  { name: 'companion length', code: 'E_SHAPE', message: /layer 'dense1' \(dense\): companion 0 of weight has 3 elements, expected 30/, make: withMlp((n) => { layer(n, 0, 'dense').companions = { weight: new Float32Array(3) }; }) },
  { name: 'unknown layout', code: 'E_LAYOUT', message: /layer 'dense1' \(dense\): layout 'xy' is not one of io, oi/, make: withMlp((n) => { (layer(n, 0, 'dense') as { layout: unknown }).layout = 'xy'; }) },
  { name: 'chain widths', code: 'E_WIDTH', message: /layer 'dense2' \(dense\): input width is 4 but its input 'relu1' has 5/, make: withMlp((n) => { const l = layer(n, 2, 'dense'); l.shape = [4, 5]; l.weight = new Float32Array(20); l.bias = new Float32Array(5); l.companions = undefined; }) },
  { name: 'NaN weight', code: 'E_NONFINITE', message: /layer 'dense2' \(dense\): weight\[7\] is NaN/, make: withMlp((n) => { layer(n, 2, 'dense').weight[7] = NaN; }) },
  { name: 'Infinity bias', code: 'E_NONFINITE', message: /layer 'dense1' \(dense\): bias\[4\] is -Infinity/, make: withMlp((n) => { layer(n, 0, 'dense').bias![4] = -Infinity; }) },
  { name: 'NaN in a momentum buffer', code: 'E_NONFINITE', message: /layer 'dense3' \(dense\): companion 0 of weight\[11\] is NaN/, make: withMlp((n) => { (layer(n, 4, 'dense').companions!.weight as Float32Array)[11] = NaN; }) },
  { name: 'NaN in batch-norm variance', code: 'E_NONFINITE', message: /layer 's1c1\/bn' \(batch-norm\): variance\[2\] is NaN/, make: () => { const n = vgg({ inputSize: 4, stages: [[3]], batchNorm: true }); layer(n, 1, 'batch-norm').variance[2] = NaN; return n; } },
  { name: 'weight not a Float32Array', code: 'E_TYPE', message: /layer 'dense1' \(dense\): weight must be a Float32Array/, make: withMlp((n) => { (layer(n, 0, 'dense') as { weight: unknown }).weight = new Float64Array(30); }) },
  { name: 'unknown layer kind', code: 'E_LAYER_KIND', message: /layer 'rnn': unknown kind 'lstm'/, make: withMlp((n) => { n.splice(2, 0, { kind: 'lstm', name: 'rnn' } as unknown as Layer); }) },
  { name: 'unsupported activation', code: 'E_LAYER_KIND', message: /layer '#1' \(activation\): activation 'mish' is not supported/, make: () => [dense(3, 4), { kind: 'activation', fn: 'mish' } as unknown as Layer, dense(4, 2)] },
  { name: 'unknown input name', code: 'E_GRAPH', message: /layer 'sum': input 'nope' is not the name of any layer/, make: () => [{ ...dense(3, 4), name: 'a' } as Layer, { kind: 'add', name: 'sum', inputs: ['a', 'nope'] }, dense(4, 2)] },
  { name: 'input from a later layer', code: 'E_GRAPH', message: /layer 'a': input 'b' comes after it/, make: () => [{ ...dense(3, 4), name: 'a', inputs: ['b'] } as Layer, { ...dense(4, 2), name: 'b' } as Layer] },
  { name: 'duplicate name', code: 'E_GRAPH', message: /layer 'a' \(#1\): the name is already used by layer #0/, make: () => [{ ...dense(3, 4), name: 'a' } as Layer, { ...dense(4, 2), name: 'a' } as Layer] },
  { name: 'add without inputs', code: 'E_GRAPH', message: /layer '#1' \(add\) needs 'inputs'/, make: () => [dense(3, 4), { kind: 'add' } as unknown as Layer, dense(4, 2)] },
  { name: 'add of different widths', code: 'E_WIDTH', message: /layer 'sum' \(add\): inputs 'a' \(4\), 'b' \(3\) have different channel counts/, make: () => [{ ...dense(3, 4), name: 'a' } as Layer, { ...dense(4, 3), name: 'b' } as Layer, { kind: 'add', name: 'sum', inputs: ['a', 'b'] }, dense(4, 2)] },
  { name: 'dense on a feature map', code: 'E_GRAPH', message: /layer 'fc1' \(dense\): reads the feature map of 'pool1'; put a flatten/, make: () => vgg({ inputSize: 4, stages: [[3]] }).filter((l) => l.kind !== 'flatten') },
  { name: 'flatten width not a multiple of channels', code: 'E_WIDTH', message: /layer 'fc1' \(dense\): input width 10 is not a multiple of the 3 channels flattened by 'flatten'/, make: () => { const n = vgg({ inputSize: 4, stages: [[3]], hidden: 2, bias: false }); const fc = layer(n, 4, 'dense'); fc.shape = [10, 2]; fc.weight = new Float32Array(20).fill(1); return n; } },
  { name: 'two layers sharing one array', code: 'E_ALIAS', message: /layer 'dense2' weight shares memory with layer 'dense1' weight/, make: () => { const buf = new Float32Array(100).fill(0.1); return [{ ...dense(3, 4), name: 'dense1', weight: buf.subarray(0, 12) } as Layer, { kind: 'relu' }, { ...dense(4, 2), name: 'dense2', weight: buf.subarray(10, 18) } as Layer]; } },
  { name: 'BN mean is the gamma array', code: 'E_ALIAS', message: /layer 's1c1\/bn' gamma shares memory with layer 's1c1\/bn' mean; enorm reads mean as is while it rescales the other/, make: () => { const n = vgg({ inputSize: 4, stages: [[3]], batchNorm: true }); const bn = layer(n, 1, 'batch-norm'); bn.mean = bn.gamma!; return n; } },
  { name: 'BN variance is the next conv layer\'s weight', code: 'E_ALIAS', message: /layer 's1c2' weight shares memory with layer 's1c1\/bn' variance; enorm reads variance as is/, make: () => { const n = vgg({ inputSize: 4, stages: [[3, 3]], batchNorm: true }); const bn = layer(n, 1, 'batch-norm'); const conv = layer(n, 3, 'conv2d'); conv.weight.fill(0.5); bn.variance = conv.weight.subarray(0, 3); return n; } },
  { name: 'BN mean overlapping a dense weight (subarrays of one buffer)', code: 'E_ALIAS', message: /layer 'bn' mean shares memory with layer 'fc' weight; enorm reads mean as is while it rescales the other/, make: () => { const buf = new Float32Array(40).fill(0.25); return [{ ...dense(3, 4), name: 'fc', weight: buf.subarray(0, 12) } as Layer, { kind: 'batch-norm', name: 'bn', gamma: new Float32Array(4).fill(1), mean: buf.subarray(10, 14), variance: new Float32Array(4).fill(1) }, { kind: 'relu' }, dense(4, 2)]; } },
  { name: 'a frozen layer\'s weight is a trainable layer\'s weight', code: 'E_ALIAS', message: /layer 'b' weight shares memory with layer 'a' weight; enorm reads weight as is/, make: () => { const shared = new Float32Array(16).fill(0.5); return [{ ...dense(4, 4), name: 'a', weight: shared } as Layer, { kind: 'relu' }, { ...dense(4, 4), name: 'b', weight: shared, frozen: 'shared with model B' } as Layer, { kind: 'relu' }, dense(4, 2)]; } },
  { name: 'empty network', code: 'E_GRAPH', message: /the network is empty/, make: () => [] },
  { name: 'c = 0', code: 'E_OPTION', message: /c must be a finite number > 0, got 0/, make: withMlp(() => {}), options: { c: 0 } },
  { name: 'c = NaN', code: 'E_OPTION', message: /c must be a finite number > 0, got NaN/, make: withMlp(() => {}), options: { c: NaN } },
  { name: 'p = -1', code: 'E_OPTION', message: /p must be a finite number > 0, got -1/, make: withMlp(() => {}), options: { p: -1 } },
  { name: 'p = 12', code: 'E_OPTION', message: /p must be at most 10/, make: withMlp(() => {}), options: { p: 12 } },
  { name: 'tolerance < 0', code: 'E_OPTION', message: /tolerance must be a finite number >= 0/, make: withMlp(() => {}), options: { tolerance: -1 } },
  { name: 'maxCycles fractional', code: 'E_OPTION', message: /maxCycles must be an integer >= 0, got 2.5/, make: withMlp(() => {}), options: { maxCycles: 2.5 } },
  { name: 'unknown residual mode', code: 'E_OPTION', message: /residual must be 'complete' or 'blocks'/, make: withMlp(() => {}), options: { residual: 'half' } },
  { name: 'unknown backend', code: 'E_OPTION', message: /backend must be 'auto', 'simd', 'scalar' or 'js'/, make: withMlp(() => {}), options: { backend: 'gpu' } },
];

describe('bad input', () => {
  it.each(cases)('$name -> $code, nothing changed', async ({ code, message, make, options }) => {
    for (const entry of ['balance', 'ENorm.create'] as const) {
      const net = make();
      const before = snapshot(net);
      const run = entry === 'balance' ? balance(net, options) : ENorm.create(net, options);
      const err = await (run as Promise<unknown>).then(() => null, (e: unknown) => e);
      expect(err, entry).toBeInstanceOf(ENormError);
      expect((err as ENormError).code).toBe(code);
      expect((err as ENormError).message).toMatch(message);
      expect((err as ENormError).message).not.toMatch(/\n/);
      expect(snapshot(net)).toEqual(before);
    }
  });

  it('errors carry the layer, tensor and index', async () => {
    const net = mlp({ sizes: [6, 5, 3], seed: 2 });
    layer(net, 2, 'dense').weight[9] = Infinity;
    const err = (await balance(net).catch((e) => e)) as ENormError;
    expect(err.details).toEqual({ layerIndex: 2, layer: 'dense2', tensor: 'weight', index: 9 });
  });

  it('read-only tensors may share memory with each other, and sit next to rescaled ones in one buffer', async () => {
    // mean and variance the same array; the gamma/beta of a BN right after them in the same buffer;
    // two frozen layers sharing one kernel.
    const buf = new Float32Array(32).fill(1);
    const stats = buf.subarray(0, 4);
    const frozen = new Float32Array(16).fill(0.5);
    const net: Network = [
      { ...dense(3, 4), name: 'fc' } as Layer,
      { kind: 'batch-norm', name: 'bn', gamma: buf.subarray(4, 8), beta: buf.subarray(8, 12), mean: stats, variance: stats },
      { kind: 'relu' },
      { ...dense(4, 4), name: 'mid' } as Layer, // reads the BN units: one group, written by gamma and beta
      { kind: 'relu' },
      { ...dense(4, 4), name: 'f1', weight: frozen, frozen: 'shared' } as Layer,
      { kind: 'relu' },
      { ...dense(4, 4), name: 'f2', weight: frozen, frozen: 'shared' } as Layer,
      { kind: 'relu' },
      dense(4, 2),
    ];
    const report = await balance(net);
    expect(report.groups).toBe(1);
    expect(Array.from(stats)).toEqual([1, 1, 1, 1]);
    expect(frozen.every((x) => x === 0.5)).toBe(true);
  });

  it('a layer name with a line break or a bidi override is escaped: every message stays one line', async () => {
    const name = 'a\nb\u202e';
    const nan = [{ ...dense(3, 4), name } as Layer, { kind: 'relu' } as Layer, dense(4, 2)];
    (nan[0] as { weight: Float32Array }).weight[0] = NaN;
    const validation = (await balance(nan).catch((e) => e)) as ENormError;
    expect(validation.message).toBe("layer 'a\\nb\\u202e' (dense): weight[0] is NaN");
    expect(validation.details.layer).toBe(name); // the raw name, for programs

    const direct = [{ ...dense(3, 5), name } as Layer, { ...dense(4, 2), name: 'next' } as Layer];
    const viaName = (await balance(direct).catch((e) => e)) as ENormError;
    expect(viaName.message).toBe("layer 'next' (dense): input width is 4 but its input 'a\\nb\\u202e' has 5");

    const unknownInput = [dense(3, 4), { ...dense(4, 2), inputs: ['x\ny'] } as Layer];
    const graph = (await balance(unknownInput).catch((e) => e)) as ENormError;
    expect(graph.message).toBe("layer '#1': input 'x\\ny' is not the name of any layer");
  });

  it('a valid ResNet-18 passes validation', async () => {
    await expect(ENorm.create(resnet18({ width: 4 }))).resolves.toBeInstanceOf(ENorm);
  });
});
