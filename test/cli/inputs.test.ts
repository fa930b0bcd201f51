import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CliFailure } from '../../src/cli/failure.js';
import { checkInputsFor, INPUT_LIMITS, parseJsonInputs, readInputsFile } from '../../src/cli/inputs.js';
import { encodeNpy } from '../../src/cli/npy.js';
import { tempRoot } from '../helpers/temp.js';

const root = tempRoot('enorm-inputs-');

const refusal = async (run: () => unknown, code: string, message: RegExp) => {
  let error: unknown;
  try { await run(); } catch (e) { error = e; }
  expect(error).toBeInstanceOf(CliFailure);
  expect((error as CliFailure).code).toBe(code);
  expect((error as Error).message).toMatch(message);
};

describe('--inputs as JSON', () => {
  it('nested arrays of numbers, one example or a batch', () => {
    expect(parseJsonInputs('[[1, 2], [3, 4.5], [5, 6]]', 'f')).toEqual({ shape: [3, 2], data: Float32Array.from([1, 2, 3, 4.5, 5, 6]) });
    expect(parseJsonInputs('[1, 2, 3]', 'f').shape).toEqual([3]);
  });

  it('refuses ragged arrays, non-numbers, non-finite values, objects and deep nesting, naming the entry', async () => {
    await refusal(() => parseJsonInputs('[[1, 2], [3]]', 'f'), 'E_OPTION', /entry \[1\] is not an array of 2/);
    await refusal(() => parseJsonInputs('[[1, 2], [3, "4"]]', 'f'), 'E_OPTION', /entry \[1\]\[1\] is a string, not a finite number/);
    await refusal(() => parseJsonInputs('[[1, null]]', 'f'), 'E_OPTION', /entry \[0\]\[1\] is null/);
    await refusal(() => parseJsonInputs('[1e999]', 'f'), 'E_OPTION', /entry \[0\] is Infinity/);
    await refusal(() => parseJsonInputs('[1, [2]]', 'f'), 'E_OPTION', /entry \[1\] is an array, not a finite number/);
    await refusal(() => parseJsonInputs('{"x": [1]}', 'f'), 'E_OPTION', /not an array of numbers/);
    await refusal(() => parseJsonInputs('[1,', 'f'), 'E_OPTION', /neither a \.npy file nor valid JSON/);
    await refusal(() => parseJsonInputs('['.repeat(10_000) + ']'.repeat(10_000), 'f'), 'E_OPTION', /nest deeper than 9/);
  });
});

describe('matching the model input shape', () => {
  const file = (shape: number[]) => ({ shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) });
  it('a batch along the first axis, or a single example; open dimensions take the file sizes', () => {
    expect(checkInputsFor(file([5, 4]), [4], 'f')).toMatchObject({ count: 5, shape: [4] });
    expect(checkInputsFor(file([4]), [4], 'f')).toMatchObject({ count: 1, shape: [4] });
    expect(checkInputsFor(file([2, 6, 6, 3]), [-1, -1, 3], 'f')).toMatchObject({ count: 2, shape: [6, 6, 3] });
  });

  it('refuses a wrong shape, an empty batch and non-finite values', async () => {
    await refusal(() => checkInputsFor(file([5, 3]), [4], 'f'), 'E_SHAPE', /its shape \[5, 3\] is neither one input of the model's shape \[4\] nor a batch \[N, 4\]/);
    await refusal(() => checkInputsFor(file([0, 4]), [4], 'f'), 'E_SHAPE', /holds no input values/);
    const nan = file([2, 2]);
    nan.data[3] = NaN;
    await refusal(() => checkInputsFor(nan, [2], 'f'), 'E_NONFINITE', /input value 3 is NaN/);
  });
});

describe('reading the file', () => {
  it('.npy by its magic, JSON otherwise', async () => {
    const npy = join(root(), 'x.npy');
    await writeFile(npy, encodeNpy(Float32Array.from([1, 2, 3, 4]), [2, 2]));
    expect(await readInputsFile(npy)).toEqual({ shape: [2, 2], data: Float32Array.from([1, 2, 3, 4]) });
    const json = join(root(), 'x.json');
    await writeFile(json, '[[1, 2]]');
    expect((await readInputsFile(json)).shape).toEqual([1, 2]);
  });

  it('refuses a missing file, a folder and a file over the size limit, before reading it', async () => {
    await refusal(() => readInputsFile(join(root(), 'none.npy')), 'E_OPTION', /cannot read it \(ENOENT\)/);
    await refusal(() => readInputsFile(root()), 'E_OPTION', /not a regular file/);
    const big = join(root(), 'big.json');
    await writeFile(big, '[' + '0,'.repeat(100) + '0]');
    const limit = INPUT_LIMITS.fileBytes;
    INPUT_LIMITS.fileBytes = 100;
    try {
      await refusal(() => readInputsFile(big), 'E_OPTION', /203 bytes, over the limit of 100 bytes/);
    } finally {
      INPUT_LIMITS.fileBytes = limit;
    }
  });
});
