/** The CLI's issue-12 flags: --p inf, --quantize, --inputs, progress, --fold-bn, the runtime check, file outputs. */
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { encodeNpy } from '../../src/cli/npy.js';
import { readTfjsModelFile } from '../../src/model-io/files.js';
import { isWeighted } from '../../src/network/layers.js';
import { weightSqnr } from '../../src/quantize/quantize.js';
import { fakeFormat, fakeState } from '../helpers/cli-fake-format.js';

vi.mock('../../src/model-io/formats.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/model-io/formats.js')>();
  const { fakeFormat: fake } = await import('../helpers/cli-fake-format.js');
  return { ...real, FORMATS: [...real.FORMATS, fake], formatFor: (path: string) => (fake.detect(path) ? fake : real.formatFor(path)) };
});
const { main } = await import('../../src/cli/main.js');
type CliReport = import('../../src/cli/main.js').CliReport;

const MODEL = 'models/mnist-mlp/model.json';

async function cli(args: string[], isTTY = false) {
  let out = '';
  let err = '';
  const code = await main(args, { out: (t) => { out += t; }, err: (t) => { err += t; }, isTTY });
  return { code, out, err };
}
const fresh = async () => join(await mkdtemp(join(tmpdir(), 'enorm-deploy-')), 'out');
const json = (out: string) => JSON.parse(out) as CliReport & { options: { p: number | string } };

beforeEach(() => {
  fakeState.written = undefined;
  fakeState.unavailable = undefined;
  fakeState.badFold = false;
  fakeState.runs = 0;
});

describe('--p inf', () => {
  it.each(['inf', 'Infinity', 'INF'])('--p %s balances with p = ∞, reported as "inf"', async (p) => {
    const r = await cli(['balance', MODEL, '-o', await fresh(), '--p', p, '--json', '--samples', '8']);
    expect(r.code).toBe(0);
    const report = json(r.out);
    expect(report.options.p).toBe('inf');
    expect(report.energyAfter).toBeLessThan(report.energyBefore);
    expect(report.maxScaleChange).toBeLessThanOrEqual(1e-6);
    // ||W||_∞ of each layer is its largest |w|
    const original = await readTfjsModelFile(MODEL);
    const first = original.network.find(isWeighted)!;
    expect(report.layers[0].norm).toBeCloseTo(first.weight.reduce((m, w) => Math.max(m, Math.abs(w)), 0), 12);
  });

  it('the text report heads the norm column max|W| at p = ∞ and ||W||_p otherwise', async () => {
    const inf = await cli(['balance', MODEL, '-o', await fresh(), '--p', 'inf', '--samples', '2']);
    const two = await cli(['balance', MODEL, '-o', await fresh(), '--samples', '2']);
    expect(inf.code).toBe(0);
    expect(two.code).toBe(0);
    expect(inf.out).toMatch(/max\|W\| before/);
    expect(inf.out).not.toMatch(/\|\|W\|\|_p/);
    expect(two.out).toMatch(/\|\|W\|\|_p before/);
  });

  it.each(['-inf', 'infinite', 'NaN', '11'])('--p %s is a usage error', async (p) => {
    const r = await cli(['balance', MODEL, '-o', await fresh(), '--p', p]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/p must be a number > 0 and <= 10, or inf/);
  });
});

describe('--quantize', () => {
  it('int8 per tensor: JSON per-tensor SQNR before and after, output SQNR, and the text table and verdict', async () => {
    const r = await cli(['balance', MODEL, '-o', await fresh(), '--quantize', 'int8', '--json', '--samples', '16']);
    expect(r.code).toBe(0);
    const q = json(r.out).quantization!;
    expect(q).toMatchObject({ bits: 8, perChannel: false, outputSamples: 16 });
    expect(q.tensors.map((t) => t.layer)).toEqual(['dense_1', 'dense_2', 'dense_3']);
    q.tensors.forEach((t) => expect(t.name).toMatch(new RegExp(`^${t.layer}/`)));
    // before: the SQNR of the original kernels, computed here independently
    const original = (await readTfjsModelFile(MODEL)).network.filter(isWeighted);
    q.tensors.forEach((t, i) => expect(t.sqnrBefore).toBeCloseTo(weightSqnr(original[i].weight, 8), 9));
    q.tensors.forEach((t) => { expect(t.sqnrAfter).toBeGreaterThan(30); expect(t.sqnrAfter).not.toBe(t.sqnrBefore); });
    expect(q.outputSqnrBefore).toBeGreaterThan(30);
    expect(q.outputSqnrAfter).toBeGreaterThan(30);

    const text = await cli(['balance', MODEL, '-o', await fresh(), '--quantize', 'int8', '--samples', '16']);
    expect(text.out).toMatch(/^int8 per-tensor weight quantisation, SQNR in dB:$/m);
    expect(text.out).toMatch(/^dense_1\/\S+\s+\d+\.\d\s+\d+\.\d\s+[+-]\d+\.\d$/m);
    expect(text.out).toMatch(/^int8 per-tensor: balancing ((raised|lowered) the weight SQNR by a median of [+-]\d+\.\d dB|left the weight SQNR unchanged \(median change \+0\.0 dB\)); output SQNR \d+\.\d -> \d+\.\d dB on 16 check inputs$/m);
  });

  it('int4 per channel beats int4 per tensor on every tensor, and int8 beats int4', async () => {
    const run = async (...flags: string[]) => json((await cli(['balance', MODEL, '-o', await fresh(), '--json', '--samples', '4', '--quantize', ...flags])).out).quantization!;
    const [perTensor, perChannel, int8] = [await run('int4'), await run('int4', '--per-channel'), await run('int8')];
    expect(perChannel.perChannel).toBe(true);
    perChannel.tensors.forEach((t, i) => {
      expect(t.sqnrBefore).toBeGreaterThan(perTensor.tensors[i].sqnrBefore);
      expect(int8.tensors[i].sqnrBefore).toBeGreaterThan(perTensor.tensors[i].sqnrBefore + 18);
    });
  });

  it('--quantize int3 is a usage error; --samples 0 leaves the output SQNR unmeasured (null)', async () => {
    expect((await cli(['balance', MODEL, '-o', await fresh(), '--quantize', 'int3'])).code).toBe(2);
    const r = await cli(['balance', MODEL, '-o', await fresh(), '--quantize', 'int4', '--samples', '0', '--json']);
    expect(r.code).toBe(0);
    expect(json(r.out).quantization).toMatchObject({ outputSamples: 0, outputSqnrBefore: null, outputSqnrAfter: null });
  });
});

describe('--inputs', () => {
  const dir = () => mkdtemp(join(tmpdir(), 'enorm-inputs-'));
  it('a .npy batch replaces the random inputs: its example count, its name, different figures', async () => {
    const file = join(await dir(), 'zeros.npy');
    await writeFile(file, encodeNpy(new Float32Array(5 * 784), [5, 784]));
    const r = await cli(['balance', MODEL, '-o', await fresh(), '--inputs', file, '--quantize', 'int8', '--json']);
    expect(r.code).toBe(0);
    const report = json(r.out);
    expect(report.outputDeviation).toMatchObject({ samples: 5, inputs: file, checkedBy: 'float64 forward' });
    const random = json((await cli(['balance', MODEL, '-o', await fresh(), '--samples', '5', '--quantize', 'int8', '--json'])).out);
    expect(report.quantization!.outputSqnrBefore).not.toBeCloseTo(random.quantization!.outputSqnrBefore!, 3);
    const text = await cli(['balance', MODEL, '-o', await fresh(), '--inputs', file]);
    expect(text.out).toMatch(new RegExp(`largest output deviation on 5 inputs from ${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: `));
  });

  it('a JSON array of one example', async () => {
    const file = join(await dir(), 'one.json');
    await writeFile(file, JSON.stringify(Array.from({ length: 784 }, (_, i) => (i % 7) / 7)));
    const r = await cli(['balance', MODEL, '-o', await fresh(), '--inputs', file, '--json']);
    expect(r.code).toBe(0);
    expect(json(r.out).outputDeviation.samples).toBe(1);
  });

  it('a wrong shape or a corrupt file: exit 1, one line, nothing written', async () => {
    const file = join(await dir(), 'bad.npy');
    await writeFile(file, encodeNpy(new Float32Array(10), [2, 5]));
    const out = await fresh();
    const r = await cli(['balance', MODEL, '-o', out, '--inputs', file]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^enorm: --inputs .*bad\.npy: its shape \[2, 5\] is neither one input of the model's shape \[784\] nor a batch \[N, 784\]\n$/);
    await expect(readdir(out)).rejects.toThrow(/ENOENT/);
    const broken = join(await dir(), 'broken.npy');
    await writeFile(broken, encodeNpy(new Float32Array(784), [1, 784]).subarray(0, 500));
    const b = await cli(['balance', MODEL, '-o', out, '--inputs', broken, '--json']);
    expect(b.code).toBe(1);
    expect(JSON.parse(b.err).error).toMatchObject({ code: 'E_OPTION', message: expect.stringMatching(/not a float32 \.npy file: shape \(1, 784\) needs 3136 bytes/) });
  });
});

describe('progress', () => {
  it('on a terminal: the header before the work, the phases and cycle lines on stderr; the report unchanged on stdout', async () => {
    const r = await cli(['balance', MODEL, '-o', await fresh(), '--samples', '4', '--json'], true);
    expect(r.code).toBe(0);
    expect(json(r.out).cycles).toBeGreaterThan(0);
    const lines = r.err.split(/[\r\n]/).filter(Boolean);
    expect(lines[0]).toMatch(/^enorm: enorm balance models\/mnist-mlp\/model\.json -> .* c=1 p=2 tolerance=0\.000001 stop-on=fixed-point omega=auto max-cycles=1000 backend=auto \(0\.\d s\)$/);
    expect(lines[1]).toMatch(/^enorm: reading models\/mnist-mlp\/model\.json /);
    expect(r.err).toMatch(/^enorm: planning 234752 weights /m);
    expect(r.err).toMatch(/\renorm: cycle \d+ {2}energy \d\.\d{6}e\+2 {2}\d+\.\d s/);
    expect(r.err).toMatch(/^enorm: writing /m);
    expect(r.err.endsWith('\n')).toBe(true);
  });

  it('p = ∞ cycle lines show the largest scale change', async () => {
    const r = await cli(['balance', MODEL, '-o', await fresh(), '--samples', '4', '--p', 'inf'], true);
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/\renorm: cycle \d+ {2}largest scale change \d\.\d{3}e[+-]\d+ /);
  });

  it('nothing on stderr when it is not a terminal, or with --quiet', async () => {
    expect((await cli(['balance', MODEL, '-o', await fresh(), '--samples', '4'])).err).toBe('');
    expect((await cli(['balance', MODEL, '-o', await fresh(), '--samples', '4', '--quiet'], true)).err).toBe('');
  });
});

describe('format hooks (an in-memory format with output: file)', () => {
  const outFile = async () => join(await mkdtemp(join(tmpdir(), 'enorm-fake-')), 'balanced.fake');

  it('the deviation check runs in the format runtime, before and after; names come from weightNames', async () => {
    const r = await cli(['balance', 'm.fake', '-o', await outFile(), '--json', '--quantize', 'int8', '--samples', '6']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const report = json(r.out);
    expect(fakeState.runs).toBe(2);
    expect(report.outputDeviation).toMatchObject({ samples: 6, checkedBy: 'fake runtime' });
    expect(report.outputDeviation.relative).toBeLessThan(1e-5);
    expect(report.quantization!.tensors.map((t) => t.name)).toEqual(['graph.fc1.W', 'graph.fc2.W']);
    expect(fakeState.written).toBeDefined();
  });

  it('a runtime that is not installed: the check is skipped and said so; --require-check makes it exit 1, nothing written', async () => {
    fakeState.unavailable = 'onnxruntime-web is not installed';
    const skipped = await cli(['balance', 'm.fake', '-o', await outFile(), '--json']);
    expect(skipped.code).toBe(0);
    expect(json(skipped.out).outputDeviation).toEqual({ samples: 64, skipped: 'onnxruntime-web is not installed' });
    const text = await cli(['balance', 'm.fake', '-o', await outFile()]);
    expect(text.out).toMatch(/^output check skipped: onnxruntime-web is not installed$/m);
    fakeState.written = undefined;
    const required = await cli(['balance', 'm.fake', '-o', await outFile(), '--require-check', '--json']);
    expect(required.code).toBe(1);
    expect(JSON.parse(required.err).error).toMatchObject({ code: 'E_CHECK', message: expect.stringMatching(/the output check cannot run: onnxruntime-web is not installed; --require-check/) });
    expect(fakeState.written).toBeUndefined();
    expect((await cli(['balance', 'm.fake', '-o', await outFile(), '--require-check', '--samples', '0'])).err).toMatch(/--require-check needs the output check/);
  });

  it('--fold-bn: the BN is gone from what is written, the report counts it, and the check compares with the original', async () => {
    const r = await cli(['balance', 'm.fake', '-o', await outFile(), '--fold-bn', '--json']);
    expect(r.code).toBe(0);
    const report = json(r.out);
    expect(report.foldedBatchNorms).toBe(1);
    expect(report.outputDeviation.relative).toBeLessThan(1e-4);
    expect(fakeState.written!.network.map((l) => l.kind)).toEqual(['input', 'dense', 'relu', 'dense']);
    expect(report.layers.map((l) => l.layer)).toEqual(['fc1', 'fc2']);
    const text = await cli(['balance', 'm.fake', '-o', await outFile(), '--fold-bn']);
    expect(text.out).toMatch(/^folded 1 batch norm into the layer before$/m);
    // a fold that changes the function is caught: the check's "before" is the original model
    fakeState.badFold = true;
    fakeState.written = undefined;
    const bad = await cli(['balance', 'm.fake', '-o', await outFile(), '--fold-bn']);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/balancing moved the outputs by .* relative \(over --max-deviation 0\.001\); nothing written/);
    expect(fakeState.written).toBeUndefined();
  });

  it('--fold-bn on a format without foldBatchNorm is E_OPTION before reading', async () => {
    const fold = fakeFormat.foldBatchNorm;
    delete (fakeFormat as { foldBatchNorm?: unknown }).foldBatchNorm;
    try {
      const r = await cli(['balance', 'm.fake', '-o', await outFile(), '--fold-bn', '--json']);
      expect(r.code).toBe(1);
      expect(JSON.parse(r.err).error).toMatchObject({ code: 'E_OPTION', message: 'the fake format cannot fold batch norm (--fold-bn)' });
    } finally {
      fakeFormat.foldBatchNorm = fold;
    }
  });

  it('-o for a file format: not a folder, not the input, and its folder must exist', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'enorm-fake-'));
    const cases: [string, string, RegExp][] = [
      ['m.fake', dir, /is a folder; for fake models -o names the output file/],
      ['m.fake', join(dir, 'missing', 'b.fake'), /the folder .*missing does not exist/],
      [join(dir, 'm.fake'), join(dir, '.', 'm.fake'), /is the input model itself/],
    ];
    for (const [model, out, message] of cases) {
      const r = await cli(['balance', model, '-o', out]);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(message);
    }
    expect(fakeState.written).toBeUndefined();
  });
});

describe('help', () => {
  it('lists the formats and the new flags', async () => {
    const r = await cli(['balance', '--help']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/a folder for tfjs,[\s\S]*a\s+file\s+for\s+fake/);
    for (const flag of ['--quantize', '--per-channel', '--inputs', '--quiet', '--fold-bn', '--require-check']) expect(r.out).toContain(flag);
    expect(await readFile(MODEL, 'utf8')).toContain('dense_1'); // the model the tests balance is the shipped one
  });
});
