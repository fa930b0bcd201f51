import { execFile } from 'node:child_process';
import { mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { main, type CliReport } from '../../src/cli/main.js';

const MODEL = 'models/mnist-mlp/model.json';

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(args, { out: (t) => { out += t; }, err: (t) => { err += t; } });
  return { code, out, err };
}

/** A copy of the default model in a fresh directory, optionally corrupted. */
async function modelCopy(edit?: { json?: (j: Record<string, unknown>) => void; weights?: (b: Buffer) => Buffer }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'enorm-cli-'));
  const json = JSON.parse(await readFile(MODEL, 'utf8'));
  edit?.json?.(json);
  await writeFile(join(dir, 'model.json'), JSON.stringify(json));
  const weights = await readFile('models/mnist-mlp/weights.bin');
  await writeFile(join(dir, 'weights.bin'), edit?.weights ? edit.weights(weights) : weights);
  return join(dir, 'model.json');
}

async function loadTfjs(dir: string): Promise<tf.LayersModel> {
  const json = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8'));
  const buffers = await Promise.all(json.weightsManifest.flatMap((g: { paths: string[] }) => g.paths.map((p) => readFile(join(dir, p)))));
  const bytes = Buffer.concat(buffers);
  const weightData = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  return tf.loadLayersModel(tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: json.weightsManifest.flatMap((g: { weights: unknown[] }) => g.weights), weightData }));
}

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('enorm balance', () => {
  it('balances the default model: the report, and a model tfjs loads with the same predictions', async () => {
    const outDir = await mkdtemp(join(tmpdir(), 'enorm-out-'));
    const { code, out, err } = await cli(['balance', MODEL, '-o', outDir]);
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(out).toMatch(/^energy [\d.e+]+ -> [\d.e+]+ \(-\d+\.\d+%\) after \d+ cycles, converged; 384 units in 2 groups$/m);
    expect(out).toMatch(/^dense_1\s+dense\s+256\s/m);
    expect(out).toMatch(/largest output deviation on 64 random inputs: /);
    expect(out).not.toMatch(/left at scale 1/); // the output softmax is no barrier

    const original = await loadTfjs('models/mnist-mlp');
    const balanced = await loadTfjs(outDir);
    const x = tf.randomUniform([32, 784], 0, 1, 'float32', 5);
    const a = (original.predict(x) as tf.Tensor).dataSync();
    const b = (balanced.predict(x) as tf.Tensor).dataSync();
    let worst = 0;
    a.forEach((v, i) => { worst = Math.max(worst, Math.abs(v - b[i])); });
    expect(worst).toBeLessThan(1e-5);
    // and the weights really changed
    const w0 = original.getWeights()[0].dataSync();
    const w1 = balanced.getWeights()[0].dataSync();
    expect(w0.some((v, i) => Math.abs(v - w1[i]) > 1e-3)).toBe(true);
  });

  it('--stop-on and --omega reach balance: the report says which rule and factor ran', async () => {
    const run = async (...flags: string[]) => {
      const outDir = await mkdtemp(join(tmpdir(), 'enorm-out-'));
      const { code, out } = await cli(['balance', MODEL, '-o', outDir, '--json', '--backend', 'js', '--samples', '4', ...flags]);
      expect(code).toBe(0);
      return JSON.parse(out) as CliReport;
    };
    const plain = await run('--omega', '1', '--stop-on', 'energy', '--tolerance', '1e-4');
    expect(plain.options).toMatchObject({ stopOn: 'energy', omega: 1, tolerance: 1e-4 });
    expect(plain.omega).toBe(1);
    const relaxed = await run('--omega', '1.5', '--max-cycles', '12');
    expect(relaxed.options).toMatchObject({ stopOn: 'fixed-point', omega: 1.5 });
    expect(relaxed.omega).toBe(1.5);
    const auto = await run();
    expect(auto.options).toMatchObject({ stopOn: 'fixed-point', omega: 'auto' });
    expect(auto.converged).toBe(true);
    expect(auto.distance).not.toBeNull();
    expect(auto.distance!).toBeLessThanOrEqual(1e-6);
  });

  it('--json prints the full report with options', async () => {
    const outDir = await mkdtemp(join(tmpdir(), 'enorm-out-'));
    const { code, out } = await cli(['balance', MODEL, '-o', outDir, '--json', '--c', '1.2', '--p', '1', '--max-cycles', '3', '--include-biases', '--backend', 'js', '--samples', '8']);
    expect(code).toBe(0);
    const report = JSON.parse(out) as CliReport;
    expect(report.options).toMatchObject({ c: 1.2, p: 1, maxCycles: 3, includeBiases: true });
    expect(report.backend).toBe('js');
    expect(report.cycles).toBeLessThanOrEqual(3);
    expect(report.energyAfter).toBeLessThan(report.energyBefore);
    expect(report.layers.map((l) => l.layer)).toEqual(['dense_1', 'dense_2', 'dense_3']);
    expect(report.outputDeviation.samples).toBe(8);
    expect(report.outputDeviation.relative).toBeLessThan(1e-5);
    // files.ts names the weights by content hash (weights.<16 hex>.bin), so a reader never pairs a new model.json with old weights.
    const [jsonFile, weightsFile, ...more] = report.written.map((p) => p.split('/').pop());
    expect(jsonFile).toBe('model.json');
    expect(weightsFile).toMatch(/^weights\.[0-9a-f]{16}\.bin$/);
    expect(more).toEqual([]);
  });

  const corrupt: { name: string; edit: Parameters<typeof modelCopy>[0]; message: RegExp }[] = [
    { name: 'NaN weights', edit: { weights: (b) => { const c = Buffer.from(b); c.writeFloatLE(NaN, 4 * 10); return c; } }, message: /layer 'dense_1' \(dense\): weight\[10\] is NaN/ },
    { name: 'truncated shard', edit: { weights: (b) => b.subarray(0, b.length - 100) }, message: /truncated/ },
    { name: 'unknown layer', edit: { json: (j) => { ((j.modelTopology as any).config.layers[1] as { class_name: string }).class_name = 'LSTM'; } }, message: /LSTM/ },
    { name: 'broken JSON', edit: { json: (j) => { (j as any).modelTopology = 'oops'; } }, message: /model/ },
  ];
  it.each(corrupt)('$name: exit 1, one line, nothing written', async ({ edit, message }) => {
    const model = await modelCopy(edit);
    const outDir = join(await mkdtemp(join(tmpdir(), 'enorm-out-')), 'balanced');
    const { code, out, err } = await cli(['balance', model, '-o', outDir]);
    expect(code).toBe(1);
    expect(out).toBe('');
    expect(err).toMatch(/^enorm: .+\n$/);
    expect(err).toMatch(message);
    await expect(readdir(outDir)).rejects.toThrow(/ENOENT/);
  });

  it('a missing file is one line, exit 1', async () => {
    const { code, err } = await cli(['balance', '/nonexistent/model.json', '-o', join(tmpdir(), 'x')]);
    expect(code).toBe(1);
    expect(err.trim().split('\n')).toHaveLength(1);
    expect(err).toMatch(/nonexistent\/model.json/);
  });

  it.each([
    { args: ['balance', MODEL], message: /required option '-o, --out <dir>'/ },
    { args: ['balance', MODEL, '-o', 'x', '--c', '-1'], message: /c must be a number > 0/ },
    { args: ['balance', MODEL, '-o', 'x', '--max-cycles', '2.5'], message: /max-cycles must be a whole number/ },
    ...['2', '0', '-0.5', 'fast', '', '1e', '0x1'].map((w) => ({ args: ['balance', MODEL, '-o', 'x', '--omega', w], message: /omega must be 'auto' or a number in \(0, 2\)/ })),
    { args: ['balance', MODEL, '-o', 'x', '--stop-on', 'scales'], message: /--stop-on/ },
    { args: ['frobnicate'], message: /unknown command/ },
    { args: [], message: /Usage: enorm/ },
  ])('usage error $args -> exit 2', async ({ args, message }) => {
    const { code, err } = await cli(args);
    expect(code).toBe(2);
    expect(err).toMatch(message);
  });

  it('as a process: a corrupt model exits 1 with no stack trace', async () => {
    const model = await modelCopy({ weights: (b) => b.subarray(0, 1000) });
    const run = promisify(execFile);
    const err = await run(process.execPath, ['--import', 'tsx', 'src/cli/bin.ts', 'balance', model, '-o', join(tmpdir(), 'never')]).catch((e) => e);
    expect(err.code).toBe(1);
    expect(err.stderr).toMatch(/^enorm: .*truncated.*\n$/);
    expect(err.stderr).not.toMatch(/\n\s+at /);
  });

  it('refuses to write when outputs move more than --max-deviation', async () => {
    const outDir = join(await mkdtemp(join(tmpdir(), 'enorm-out-')), 'balanced');
    const { code, err } = await cli(['balance', MODEL, '-o', outDir, '--max-deviation', '0']);
    expect(code).toBe(1);
    expect(err).toMatch(/over --max-deviation 0\); nothing written/);
    await expect(readdir(outDir)).rejects.toThrow(/ENOENT/);
  });
});

