/**
 * Hostile ONNX files: truncated or malformed protobuf, dims that claim more elements than the bytes
 * hold, malformed graphs, and external data paths that leave the model's folder. Each is refused
 * with a one-line ENormError naming the tensor or node; and the Node file functions round-trip.
 */
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { balance } from '../../../src/index.js';
import { readOnnxModel } from '../../../src/model-io/onnx/index.js';
import { onnxFormat } from '../../../src/model-io/onnx/format.js';
import { readOnnxModelFile, writeOnnxModelFile } from '../../../src/model-io/onnx/node.js';
import { formatFor } from '../../../src/model-io/formats.js';
import { buildOnnx, torchMlp, type ModelSpec } from '../../helpers/onnx-builder.js';
import { rejectsWith, throwsENormError } from '../../helpers/errors.js';
import { relativeDeviation, run } from '../../helpers/onnx-run.js';
import { tempRoot } from '../../helpers/temp.js';

const root = tempRoot('enorm-onnx-');

function refused(bytes: Uint8Array, code: string, pattern: RegExp) {
  const e = throwsENormError(() => readOnnxModel(bytes));
  expect(e.code).toBe(code);
  expect(e.message).toMatch(pattern);
  expect(e.message).not.toMatch(/[\n\r\p{Cc}]/u);
}

const mlp = () => buildOnnx(torchMlp()).bytes;
function withInit(change: (s: ModelSpec) => void): Uint8Array {
  const spec = torchMlp();
  change(spec);
  return buildOnnx(spec).bytes;
}

describe('readOnnxModel on hostile bytes', () => {
  it('a truncated file, random bytes and an empty file are E_MODEL', () => {
    const bytes = mlp();
    for (const cut of [1, 10, bytes.length >> 1, bytes.length - 3]) refused(bytes.subarray(0, cut), 'E_MODEL', /not a valid ONNX model/);
    refused(new Uint8Array(0), 'E_MODEL', /no graph/);
    refused(Uint8Array.from({ length: 64 }, (_, i) => (i * 37 + 11) & 255), 'E_MODEL', /not a valid ONNX model/);
  });

  it('a file over maxModelBytes is E_MEMORY before decoding', () => {
    expect(throwsENormError(() => readOnnxModel(mlp(), { maxModelBytes: 100 })).code).toBe('E_MEMORY');
  });

  it('dims that claim more elements than the bytes hold, negative or huge dims, are E_MODEL naming the tensor', () => {
    refused(withInit((s) => { s.initializers![0].dims = [2 ** 40, 2 ** 20]; }), 'E_MODEL', /'fc1\.weight'.*(2\^53|bytes for)/);
    refused(withInit((s) => { s.initializers![0].dims = [16, -8]; }), 'E_MODEL', /'fc1\.weight': dimension -8/);
    refused(withInit((s) => { s.initializers![0].dims = [16, 9]; }), 'E_MODEL', /'fc1\.weight': raw_data has 512 bytes for 144 elements/);
    refused(withInit((s) => { s.initializers![0] = { ...s.initializers![0], storage: 'float_data', dims: [16, 9] }; }), 'E_MODEL', /128 values in float_data for 144/);
  });

  it('a tensor no layer uses is checked too: float and int64 raw_data against their dims', () => {
    refused(withInit((s) => { s.initializers!.push({ name: 'unused', dims: [3, 3], data: [1, 2] }); }), 'E_MODEL', /'unused': raw_data has 8 bytes for 9 elements/);
    refused(withInit((s) => { s.initializers!.push({ name: 'shape', dims: [4], data: [0, -1], type: 'int64' }); }), 'E_MODEL', /'shape': raw_data has 16 bytes for 4 elements of 8 bytes/);
  });

  it('malformed graphs: an undefined tensor, a tensor defined twice, a cycle', () => {
    refused(withInit((s) => { s.nodes[1].inputs = ['nowhere']; }), 'E_MODEL', /reads 'nowhere', which no node/);
    refused(withInit((s) => { s.nodes[1].outputs = ['h1']; }), 'E_MODEL', /'h1' is defined twice/);
    refused(withInit((s) => { s.nodes[0].inputs[0] = 'y'; s.inputs = []; }), 'E_MODEL', /cycle/);
  });

  it('names from the file are cleaned: control characters never reach the message', () => {
    refused(withInit((s) => { s.nodes[1].inputs = ['evil\u001b[31m\nname']; }), 'E_MODEL', /evil\\/);
  });

  it('unsorted graphs are sorted', () => {
    const model = readOnnxModel(withInit((s) => s.nodes.reverse()));
    expect(model.network.map((l) => l.kind)).toEqual(['input', 'dense', 'relu', 'dense', 'identity']);
  });
});

describe('ONNX files in Node', () => {
  async function external(dirName: string, location: string) {
    const dir = join(root(), dirName);
    await mkdir(dir, { recursive: true });
    const { bytes, external: files } = buildOnnx(torchMlp({ storage: 'external', location }));
    await writeFile(join(dir, 'model.onnx'), bytes);
    return { dir, path: join(dir, 'model.onnx'), files };
  }

  it('external data beside the model is read, and written beside the output; the output runs the same', async () => {
    const { path, files } = await external('ext', 'model.data');
    await writeFile(join(root(), 'ext', 'model.data'), files.get('model.data')!);
    const model = await readOnnxModelFile(path);
    const before = await run(model.source.bytes, [8], 3, new Map(model.source.external));
    await balance(model.network, { backend: 'js' });
    await mkdir(join(root(), 'out'), { recursive: true });
    const written = await writeOnnxModelFile(model, join(root(), 'out', 'balanced.onnx'));
    expect(written.map((p) => p.split('/').pop())).toEqual(['balanced.onnx', 'model.data']);
    const again = await readOnnxModelFile(join(root(), 'out', 'balanced.onnx'));
    const after = await run(again.source.bytes, [8], 3, new Map(again.source.external));
    expect(relativeDeviation(before, after)).toBeLessThan(1e-4);
    await rejectsWith(writeOnnxModelFile(model, path), 'E_OPTION', /is the model file that was read/);
    await rejectsWith(writeOnnxModelFile(model, join(root(), 'ext', 'other.onnx')), 'E_OPTION', /external data files would be overwritten/);
  });

  it.each([
    ['../outside.bin', /leaves the model's folder/],
    ['/etc/passwd', /absolute path/],
    ['sub\\x.bin', /backslash/],
  ])('external location %s is refused before the file system is touched', async (location, pattern) => {
    const { path } = await external(`bad-${location.length}`, location);
    await rejectsWith(readOnnxModelFile(path), 'E_MODEL', pattern);
  });

  it('an external file that is a symlink out of the folder, or missing, is refused', async () => {
    const { dir, path, files } = await external('link', 'w.bin');
    await writeFile(join(root(), 'secret.bin'), files.get('w.bin')!);
    await rejectsWith(readOnnxModelFile(path), 'E_MODEL', /'w\.bin' is missing/);
    await symlink(join(root(), 'secret.bin'), join(dir, 'w.bin'));
    await rejectsWith(readOnnxModelFile(path), 'E_MODEL', /outside the model's folder/);
  });

  it('external data shorter than the tensor is E_MODEL naming the tensor; over maxExternalBytes is E_MEMORY', async () => {
    const { dir, path } = await external('short', 'w.bin');
    await writeFile(join(dir, 'w.bin'), new Uint8Array(40));
    await rejectsWith(readOnnxModelFile(path), 'E_MODEL', /tensor 'fc1\.weight': external data of 512 bytes/);
    await rejectsWith(readOnnxModelFile(path, { maxExternalBytes: 8 }), 'E_MEMORY', /maxExternalBytes/);
  });

  it('the format entry: .onnx is detected, -o names a file, and runtime() runs the current arrays', async () => {
    expect(formatFor('a/b/model.ONNX')).toBe(onnxFormat);
    expect(onnxFormat.output).toBe('file');
    const dir = join(root(), 'fmt');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'm.onnx'), buildOnnx(torchMlp()).bytes);
    const model = await onnxFormat.read(join(dir, 'm.onnx'));
    expect(onnxFormat.verification(model).inputShape).toEqual([8]);
    expect(onnxFormat.weightNames!(model).map((w) => w.name)).toEqual(['fc1.weight', 'fc1.bias', 'fc2.weight', 'fc2.bias']);
    const runner = await onnxFormat.runtime!(model);
    if ('unavailable' in runner) throw new Error(runner.unavailable);
    const x = Float32Array.from({ length: 16 }, (_, i) => Math.sin(i));
    const before = await runner(x, 2, [8]);
    model.weights[0].data.fill(0);
    const zeroed = await onnxFormat.runtime!(model);
    if ('unavailable' in zeroed) throw new Error(zeroed.unavailable);
    expect(Array.from(await zeroed(x, 2, [8]))).not.toEqual(Array.from(before));
    const [out] = await onnxFormat.write(model, join(dir, 'balanced.onnx'));
    expect((await readFile(out)).length).toBe(buildOnnx(torchMlp()).bytes.length);
  });
});

