/**
 * readTfjsModelFile checks every shard's place and size before it opens any shard: the file
 * system calls are recorded through a pass-through mock of node:fs/promises.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { ENormError } from '../../src/errors.js';
import { readTfjsModelFile } from '../../src/model-io/files.js';
import { modelJson, WEIGHT_SPECS, weightBytes, writeModelFolder } from './files-fixture.js';

const calls: string[] = [];
vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  const record = (what: string, path: unknown) => calls.push(`${what} ${String(path).split('/').pop()}`);
  return {
    ...real,
    open: (path: string, ...rest: unknown[]) => (record('open', path), (real.open as (...a: unknown[]) => unknown)(path, ...rest)),
    stat: (path: string, ...rest: unknown[]) => (record('stat', path), (real.stat as (...a: unknown[]) => unknown)(path, ...rest)),
  };
});

let root: string;
const split = (4 * 3 + 3) * 4;
const groups = [{ paths: ['a.bin'], weights: WEIGHT_SPECS.slice(0, 2) }, { paths: ['b.bin'], weights: WEIGHT_SPECS.slice(2) }];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'enorm-read-order-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});
beforeEach(() => {
  calls.length = 0;
});

describe('readTfjsModelFile: sizes before reading', () => {
  it('a wrong-sized second shard is reported before the first shard is opened', async () => {
    const bytes = weightBytes(1);
    const model = await writeModelFolder(join(root, 'bad'), modelJson(groups), { 'a.bin': bytes.subarray(0, split), 'b.bin': bytes.subarray(split, bytes.length - 4) });
    calls.length = 0;
    const e = await readTfjsModelFile(model).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(ENormError);
    expect((e as ENormError).message).toMatch(/shard 'b\.bin' is truncated/);
    expect(calls.filter((c) => c.startsWith('open'))).toEqual(['open model.json']);
    expect(calls).toContain('stat a.bin');
  });

  it('a good model: every shard stat-ed before any shard is opened, each opened once', async () => {
    const bytes = weightBytes(2);
    const model = await writeModelFolder(join(root, 'good'), modelJson(groups), { 'a.bin': bytes.subarray(0, split), 'b.bin': bytes.subarray(split) });
    calls.length = 0;
    await readTfjsModelFile(model);
    const firstShardOpen = calls.findIndex((c) => c === 'open a.bin' || c === 'open b.bin');
    expect(calls.lastIndexOf('stat b.bin')).toBeLessThan(firstShardOpen);
    expect(calls.filter((c) => c.startsWith('open'))).toEqual(['open model.json', 'open a.bin', 'open b.bin']);
  });
});
