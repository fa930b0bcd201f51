/** `enorm balance model.onnx -o balanced.onnx` end to end: the onnxruntime-web check, tensor names from the file, -o a file. */
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { main, type CliReport } from '../../src/cli/main.js';
import { buildOnnx, torchMlp } from '../helpers/onnx-builder.js';

async function cli(args: string[]) {
  let out = '';
  let err = '';
  const code = await main(args, { out: (t) => { out += t; }, err: (t) => { err += t; } });
  return { code, out, err };
}

describe('enorm balance on an ONNX file', () => {
  it('checks in onnxruntime, names tensors as the file does, and writes the named file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'enorm-onnx-cli-'));
    const model = join(dir, 'mlp.onnx');
    await writeFile(model, buildOnnx(torchMlp()).bytes);
    const out = join(dir, 'balanced.onnx');
    const r = await cli(['balance', model, '-o', out, '--json', '--quantize', 'int8', '--p', 'inf', '--samples', '8']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.out) as CliReport;
    expect(report.format).toBe('onnx');
    expect(report.written).toEqual([out]);
    expect(report.outputDeviation).toMatchObject({ samples: 8, checkedBy: 'onnx runtime' });
    expect(report.outputDeviation.relative).toBeLessThan(1e-5);
    expect(report.quantization!.tensors.map((t) => t.name)).toEqual(['fc1.weight', 'fc2.weight']);
    expect((await stat(out)).size).toBe((await readFile(model)).length);

    const folder = await cli(['balance', model, '-o', dir]);
    expect(folder.code).toBe(1);
    expect(folder.err).toMatch(/is a folder; for onnx models -o names the output file/);
    const itself = await cli(['balance', model, '-o', model]);
    expect(itself.code).toBe(1);
    expect(itself.err).toMatch(/is the input model itself/);
  });
});
