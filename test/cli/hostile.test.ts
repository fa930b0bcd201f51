/**
 * The CLI against hostile model files and arguments: every case is one line (or one JSON object)
 * with exit 1 or 2, nothing written, no stack trace; valid but large models are handled.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ENormError } from '../../src/errors.js';
import { CHECK_LIMITS, DeviationCheck, deviationAccepted } from '../../src/cli/check.js';
import { CliFailure } from '../../src/cli/failure.js';
import { main, type CliReport } from '../../src/cli/main.js';
import { reportUncaught } from '../../src/cli/uncaught.js';
import { parseTfjsModel } from '../../src/model-io/tfjs/index.js';
import pkg from '../../package.json' with { type: 'json' };
import { functionalChain, sequentialConvNet, sequentialMlp, writeModel, type ModelFiles } from './model-files.js';

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (t) => { out += t; }, err: (t) => { err += t; } });
  return { code, out, err };
}

/** A fresh -o path that does not exist yet. */
const freshOut = async () => join(await mkdtemp(join(tmpdir(), 'enorm-out-')), 'balanced');

/** One printable line: no control / bidi / replacement characters, newline-terminated. */
function expectOneCleanLine(err: string): void {
  expect(err).toMatch(/^enorm: [^\n]+\n$/);
  // eslint-disable-next-line no-control-regex
  expect(err.slice(0, -1)).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\ufffd]/);
  expect(err).not.toMatch(/\n\s+at /);
}

async function expectFailure(files: ModelFiles | { modelJsonText: string; weights: Uint8Array }, args: string[], message: RegExp, code = 1): Promise<string> {
  const model = await writeModel(files);
  const out = await freshOut();
  const r = await cli(['balance', model, '-o', out, ...args]);
  expect(r.code).toBe(code);
  expect(r.out).toBe('');
  expectOneCleanLine(r.err);
  expect(r.err).toMatch(message);
  await expect(readdir(out)).rejects.toThrow(/ENOENT/);
  return r.err;
}

/** model.json text with `marker` (a JSON string) replaced by `depth`-deep nested arrays. */
function deepText(files: ModelFiles, depth: number): { modelJsonText: string; weights: Uint8Array } {
  const text = JSON.stringify(files.modelJson);
  return { modelJsonText: text.replace('"@DEEP@"', `${'['.repeat(depth)}1${']'.repeat(depth)}`), weights: files.weights };
}

const saved = { ...CHECK_LIMITS };
afterEach(() => { Object.assign(CHECK_LIMITS, saved); });

describe('huge declared inputs are checked against the weights first', () => {
  it.each([1e7, 1e9])('batch_input_shape [null, %d] on a 20-input MLP: E_WIDTH naming dense_1, exit 1', async (width) => {
    const err = await expectFailure(sequentialMlp([20, 8, 4], { declared: [null, width] }), [], /input shape \[\d+\] does not fit the model: layer 'dense_1': dense expects 20 input features but receives \d+/);
    expect(err).toContain(String(width));
  });

  it('--input-shape 1e9 is an exit-1 line naming the layer, not a stack trace', async () => {
    await expectFailure(sequentialMlp([20, 8, 4]), ['--input-shape', '1e9'], /given by --input-shape \[1000000000\] does not fit the model: layer 'dense_1'/);
  });

  it('a conv model declaring 512x512 inputs: refused up front with how to proceed', async () => {
    await expectFailure(sequentialConvNet([512, 512, 3]), [], /deviation check on 64 inputs of \[512, 512, 3\] would take .* over the limit .*: lower --samples or --input-shape, or pass --samples 0/);
  });

  it('--samples 1e9: exit 1, the work limit', async () => {
    await expectFailure(sequentialMlp([20, 8, 4]), ['--samples', '1e9'], /deviation check on 1000000000 inputs .* over the limit/);
  });

  it('conv layers check channels and windows through the layers: a 2-channel input for a 3-channel kernel', async () => {
    await expectFailure(sequentialConvNet([16, 16, 3]), ['--input-shape', '16,16,2'], /layer 'conv': conv2d expects 3 input channels but receives 2/);
  });

  it('one example over the activation budget is refused; --samples 0 skips the check and balances', async () => {
    CHECK_LIMITS.chunkBytes = 1024;
    await expectFailure(sequentialConvNet([16, 16, 3]), [], /needs [\d.]+ MiB of activations for one input of \[16, 16, 3\], over the limit/);
    const model = await writeModel(sequentialConvNet([16, 16, 3]));
    const r = await cli(['balance', model, '-o', await freshOut(), '--samples', '0']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/output deviation not measured \(--samples 0\)/);
  });

  it('the check runs in chunks under the budget and measures exactly what one batch measures', async () => {
    const model = await writeModel(sequentialConvNet([12, 12, 3]));
    const run = async () => {
      const r = await cli(['balance', model, '-o', await freshOut(), '--json', '--samples', '10', '--backend', 'js']);
      expect(r.code).toBe(0);
      return (JSON.parse(r.out) as CliReport).outputDeviation;
    };
    const whole = await run();
    const files = sequentialConvNet([12, 12, 3]);
    const net = parseTfjsModel(files.modelJson, files.weights.slice().buffer).network;
    const whole1 = new DeviationCheck(net, [12, 12, 3], 10, 1, 'm', 'shape');
    expect(whole1.chunkSize).toBe(10);
    // Room for three examples' activations per chunk: chunks of 3, 3, 3 and 1.
    CHECK_LIMITS.chunkBytes = 3 * whole1.exampleBytes;
    expect(new DeviationCheck(net, [12, 12, 3], 10, 1, 'm', 'shape').chunkSize).toBe(3);
    expect(await run()).toEqual(whole);
  });
});

describe('crashes found by mutating model.json are one-line errors', () => {
  const mlp = () => sequentialMlp([20, 8, 4]);
  it.each([
    ['shape', (j: Record<string, any>) => { j.weightsManifest[0].weights[0].shape = '@DEEP@'; }],
    ['dtype', (j: Record<string, any>) => { j.weightsManifest[0].weights[0].dtype = '@DEEP@'; }],
    ['activation', (j: Record<string, any>) => { j.modelTopology.config.layers[0].config.activation = '@DEEP@'; }],
    ['format', (j: Record<string, any>) => { j.format = '@DEEP@'; }],
  ])('100,000-deep nesting in %s', async (_field, edit) => {
    const files = mlp();
    edit(files.modelJson);
    await expectFailure(deepText(files, 100_000), [], /nests deeper than 100 levels/);
  });

  it.each(['constructor', 'toString', '__proto__', 'hasOwnProperty'])('class_name %s', async (name) => {
    const files = mlp();
    files.modelJson.modelTopology.config.layers[1].class_name = name;
    await expectFailure(files, [], new RegExp(`layer 'dense_2' has class ${name}, which enorm cannot rescale`));
  });

  it.each(['constructor', '__proto__'])('activation and dtype %s', async (name) => {
    const a = mlp();
    a.modelJson.modelTopology.config.layers[1].config.activation = name;
    await expectFailure(a, [], /uses activation ".+", which enorm cannot handle/);
    const d = mlp();
    d.modelJson.weightsManifest[0].weights[1].dtype = name;
    await expectFailure(d, [], /weight 'dense_1\/bias' has unsupported dtype/);
  });

  it('a Dense layer with 130,000 units balances (no spread of huge arrays)', async () => {
    const model = await writeModel(sequentialMlp([2, 130_000, 2]));
    const r = await cli(['balance', model, '-o', await freshOut(), '--samples', '4', '--max-cycles', '3']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^dense_1\s+dense\s+130000\s/m);
  });

  it('binary and control characters in names are escaped, and long names are cut', async () => {
    const files = mlp();
    const evil = `\u001b[31mevil\u0000\u202e\ufffd${'x'.repeat(5000)}`;
    files.modelJson.modelTopology.config.layers[1].config.name = evil;
    files.modelJson.modelTopology.config.layers[1].class_name = 'LSTM\u0007';
    const err = await expectFailure(files, [], /layer '\\u001b\[31mevil\\u0000\\u202e\\ufffdx+\.\.\. \(5012 characters\)' has class LSTM\\u0007/);
    expect(err.length).toBeLessThan(400);
  });
});

describe('NaN or infinite outputs never pass --max-deviation', () => {
  it('a model whose outputs overflow to Infinity: exit 1, nothing written', async () => {
    // Every weight 3e38 (float32's top): 11 positive layers overflow float64 to Infinity.
    await expectFailure(sequentialMlp(Array(12).fill(2), { constant: 3e38 }), [], /outputs are not finite before balancing .* nothing written/);
  });

  it('a deviation that became NaN is measured as NaN and refused', () => {
    const files = sequentialMlp([4, 3, 2]);
    const net = parseTfjsModel(files.modelJson, files.weights.slice().buffer).network;
    const check = new DeviationCheck(net, [4], 8, 1, 'm', 'shape');
    check.recordBefore(net);
    const unchanged = check.compareAfter(net);
    expect(unchanged.absolute).toBe(0);
    expect(deviationAccepted(unchanged, 0)).toBe(true);
    (net[1] as { weight: Float32Array }).weight[0] = NaN;
    const broken = check.compareAfter(net);
    expect(broken.absolute).toBeNaN();
    expect(deviationAccepted(broken, 1e-3)).toBe(false);
    expect(deviationAccepted({ absolute: Infinity, relative: Infinity, scale: 1 }, 1e-3)).toBe(false);
  });
});

describe('usage errors exit 2 before the model is read', () => {
  const missing = '/nonexistent/model.json'; // reading it would be exit 1
  it.each([
    [['--residual', 'full'], /Allowed choices are complete, blocks/],
    [['--backend', 'gpu'], /Allowed choices are auto, simd, scalar, js/],
    [['--samples', '-1'], /samples must be a whole number >= 0/],
    [['--samples', '1.5'], /samples must be a whole number/],
    [['--c', ''], /c must be a number > 0/],
    [['--c', '0x10'], /c must be a number > 0/],
    [['--p', '11'], /p must be a number > 0 and <= 10/],
    [['--tolerance', 'NaN'], /tolerance must be a number >= 0/],
    [['--max-deviation', 'Infinity'], /max-deviation must be a number >= 0/],
    [['--seed', '5e9'], /seed must be a whole number >= 0 and <= 4294967295/],
    [['--input-shape', '28,,1'], /input shape must be 1 to 8 positive whole numbers/],
    [['--input-shape', '1,2,3,4,5,6,7,8,9'], /input shape must be 1 to 8/],
    [['--frobnicate'], /unknown option '--frobnicate'/],
    [['extra-argument'], /too many arguments/],
  ])('%j', async (args, message) => {
    const r = await cli(['balance', missing, '-o', join(tmpdir(), 'never'), ...args]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message);
    expect(r.err).not.toMatch(/nonexistent/);
    expect(r.err.trim().split('\n')).toHaveLength(1);
  });

  it('a usage error echoing a control character prints it escaped', async () => {
    const r = await cli(['balance', missing, '-o', 'x', '--c', '\u001b[2J']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('\\u001b[2J');
    expect(r.err).not.toContain('\u001b');
  });

  it('--version prints the package version', async () => {
    const r = await cli(['--version']);
    expect(r.code).toBe(0);
    expect(r.out).toBe(`${pkg.version}\n`);
  });
});

describe('--json: errors are one JSON object on stderr', () => {
  it('usage errors: E_USAGE, exit 2', async () => {
    const r = await cli(['balance', '/nonexistent/model.json', '--json', '--backend', 'gpu', '-o', 'x']);
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    const e = JSON.parse(r.err) as { error: { code: string; message: string; details: object } };
    expect(e.error.code).toBe('E_USAGE');
    expect(e.error.message).toMatch(/Allowed choices are auto, simd, scalar, js/);
    expect(e.error.details).toEqual({});
    expect(r.err.trim().split('\n')).toHaveLength(1);
  });

  it('model errors: the ENormError code, message and details, exit 1', async () => {
    const files = sequentialMlp([20, 8, 4], { declared: [null, 1e9] });
    const r = await cli(['balance', await writeModel(files), '-o', await freshOut(), '--json']);
    expect(r.code).toBe(1);
    expect(r.out).toBe('');
    const e = JSON.parse(r.err) as { error: { code: string; message: string; details: Record<string, unknown> } };
    expect(e.error.code).toBe('E_WIDTH');
    expect(e.error.message).toMatch(/layer 'dense_1': dense expects 20 input features/);
    expect(e.error.details).toMatchObject({ layer: 'dense_1' });
  });

  it('CLI failures: their own code (E_NONFINITE, E_OPTION)', async () => {
    const r = await cli(['balance', await writeModel(sequentialMlp([20, 8, 4])), '-o', await freshOut(), '--json', '--samples', '1e9']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.err).error.code).toBe('E_OPTION');
  });
});

describe('errors that escape main() (bin.ts)', () => {
  it('an ENormError or CLI failure is one line, exit 1; anything else is an internal error with its stack, exit 70', () => {
    let text = '';
    expect(reportUncaught(new ENormError('E_MODEL', 'bad\nmodel'), (t) => { text += t; })).toBe(1);
    expect(text).toBe('enorm: bad\\nmodel\n');
    text = '';
    expect(reportUncaught(new CliFailure('E_DEVIATION', 'moved'), (t) => { text += t; })).toBe(1);
    expect(text).toBe('enorm: moved\n');
    text = '';
    expect(reportUncaught(new TypeError('oops'), (t) => { text += t; })).toBe(70);
    expect(text).toMatch(/^enorm: internal error, please report it: TypeError: oops\n\s+at /);
  });
});

describe('large functional models', () => {
  it('a 30,001-layer chain listed in reverse order balances through the CLI', async () => {
    const files = functionalChain(10_000, 1, (layers) => [...layers].reverse());
    const r = await cli(['balance', await writeModel(files), '-o', await freshOut(), '--samples', '2', '--json', '--max-cycles', '2']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.out) as CliReport;
    expect(report.layers).toHaveLength(10_000);
    expect(report.layers[0].layer).toBe('d0');
    expect(report.layers[9_999].layer).toBe('d9999');
  });
});

describe('as processes (node --import tsx src/cli/bin.ts)', () => {
  const run = (args: string[]) => new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'src/cli/bin.ts', ...args], (error, stdout, stderr) => {
      resolve({ code: error ? (error as { code?: number }).code ?? null : 0, stdout, stderr });
    });
  });

  it('100,000-deep nesting and --samples 1e9: exit 1, one line, no stack trace', async () => {
    const files = sequentialMlp([20, 8, 4]);
    files.modelJson.modelTopology.config.layers[0].config.activation = '@DEEP@';
    const deep = await run(['balance', await writeModel(deepText(files, 100_000)), '-o', await freshOut()]);
    expect(deep.code).toBe(1);
    expectOneCleanLine(deep.stderr);
    const many = await run(['balance', await writeModel(sequentialMlp([20, 8, 4])), '-o', await freshOut(), '--samples', '1e9']);
    expect(many.code).toBe(1);
    expectOneCleanLine(many.stderr);
    expect(many.stderr).toMatch(/--samples 0/);
  });

  it('--version and a usage error', async () => {
    const version = await run(['--version']);
    expect(version.code).toBe(0);
    expect(version.stdout).toBe(`${pkg.version}\n`);
    const usage = await run(['balance', 'model.json', '-o', 'x', '--residual', 'full']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/^error: option '--residual <mode>' argument 'full' is invalid/);
  });
});
