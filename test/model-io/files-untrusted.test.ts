/**
 * readTfjsModelFile on untrusted model folders: shard paths are confined to the model's folder
 * (lexically and after symlinks), only regular files are read, sizes and limits are checked
 * before reading, and messages are one printable line that says nothing about files outside.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, open, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ENormError } from '../../src/errors.js';
import { readTfjsModelFile } from '../../src/model-io/files.js';
import { folderSeed, modelJson, WEIGHT_BYTES, WEIGHT_SPECS, weightBytes, writeModelFolder } from './files-fixture.js';
import { rejectsWith } from '../helpers/errors.js';
import { tempRoot } from '../helpers/temp.js';

const root = tempRoot('enorm-untrusted-');
let counter = 0;
const freshDir = () => join(root(), `case-${++counter}`, 'model');
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

const failure = rejectsWith;

/** A model folder whose one weight group has the given shard paths. */
async function folderWithPaths(paths: string[], shards: Record<string, Uint8Array | string> = {}, dir = freshDir()): Promise<string> {
  return writeModelFolder(dir, modelJson([{ paths, weights: WEIGHT_SPECS }]), shards);
}


describe('shard paths stay inside the model folder', () => {
  it('reads shards in subfolders and through symlinks that stay inside', async () => {
    const dir = freshDir();
    const half = WEIGHT_BYTES / 2;
    const path = await folderWithPaths(['sub/a.bin', 'link.bin'], { 'sub/a.bin': weightBytes(5).subarray(0, half), 'real/b.bin': weightBytes(5).subarray(half) }, dir);
    await symlink('real/b.bin', join(dir, 'link.bin'));
    expect((await readTfjsModelFile(path)).weights.map((w) => w.name)).toEqual(WEIGHT_SPECS.map((w) => w.name));
    expect(await folderSeed(dir)).toBe(5);
    // and the model folder itself may be reached through a symlink
    await symlink(dir, join(root(), `via-link-${counter}`));
    expect((await readTfjsModelFile(join(root(), `via-link-${counter}`, 'model.json'))).weights).toHaveLength(4);
  });

  it.each([
    { path: '../secret.bin', why: /leaves the model's folder/ },
    { path: 'sub/../../secret.bin', why: /leaves the model's folder/ },
    { path: '..', why: /leaves the model's folder/ },
    { path: '/etc/passwd', why: /is an absolute path/ },
    { path: '//server/share/w.bin', why: /is an absolute path/ },
    { path: 'https://example.com/w.bin', why: /is a URL or a drive path/ },
    { path: 'file:///etc/passwd', why: /is a URL or a drive path/ },
    { path: 'C:w.bin', why: /is a URL or a drive path/ },
    { path: '..\\secret.bin', why: /contains a backslash/ },
    { path: 'w.bin\u0000.txt', why: /contains a NUL byte/ },
    { path: 'w\u001b[2J.bin', why: /contains a control character/ },
  ])('refuses $path before touching the file system', async ({ path, why }) => {
    const model = await folderWithPaths(['ok.bin', path], { 'ok.bin': weightBytes(1) });
    const message = await failure(readTfjsModelFile(model), 'E_MODEL', why);
    expect(message).toContain(`${model}: weightsManifest[0].paths[1] '`);
  });

  it('an absolute path is refused even when it names a file inside the folder', async () => {
    const dir = freshDir();
    const model = await folderWithPaths([join(dir, 'w.bin')], { 'w.bin': weightBytes(1) }, dir);
    await failure(readTfjsModelFile(model), 'E_MODEL', /weightsManifest\[0\]\.paths\[0\] '.*w\.bin' is an absolute path/);
  });

  it('escapes and shortens the manifest strings it quotes', async () => {
    const message = await failure(readTfjsModelFile(await folderWithPaths([`\u0007'${'a'.repeat(300)}`])), 'E_MODEL', /contains a control character$/);
    expect(message).toContain(`paths[0] '\\u0007'${'a'.repeat(58)}... (302 characters)' contains`);
    expect(message.length).toBeLessThan(300);
  });

  it('a symlink out of the folder: the same message whether its target exists or not, and no fact about it', async () => {
    const messages: string[] = [];
    for (const exists of [true, false]) {
      const dir = freshDir();
      const outside = join(dir, '..', 'outside');
      await mkdir(outside, { recursive: true });
      if (exists) await writeFile(join(outside, 'secret.bin'), 'x'.repeat(651));
      const model = await folderWithPaths(['w.bin', 'evil/secret.bin'], { 'w.bin': weightBytes(1).subarray(0, WEIGHT_BYTES - 1) }, dir);
      await symlink(join(dir, '..', 'outside', 'secret.bin'), join(dir, 'w.bin.link'));
      await symlink(outside, join(dir, 'evil'));
      // a file symlink and a symlinked folder, each pointing out
      const viaFolder = await failure(readTfjsModelFile(model), 'E_MODEL', /paths\[1\] 'evil\/secret\.bin' does not resolve to a regular file inside the model's folder$/);
      await writeModelFolder(dir, modelJson([{ paths: ['w.bin.link'], weights: WEIGHT_SPECS }]));
      const viaFile = await failure(readTfjsModelFile(model), 'E_MODEL', /paths\[0\] 'w\.bin\.link' does not resolve to a regular file inside the model's folder$/);
      for (const m of [viaFolder, viaFile]) expect(m).not.toMatch(/651|exist|found|ENOENT/);
      messages.push(`${viaFolder.replace(model, 'MODEL')}|${viaFile.replace(model, 'MODEL')}`);
    }
    expect(messages[0]).toBe(messages[1]);
  });

  it('a dangling symlink inside the folder gets the same message as one pointing outside', async () => {
    const dir = freshDir();
    const model = await folderWithPaths(['gone.bin'], {}, dir);
    await symlink('nowhere.bin', join(dir, 'gone.bin'));
    await failure(readTfjsModelFile(model), 'E_MODEL', /paths\[0\] 'gone\.bin' does not resolve to a regular file inside the model's folder$/);
  });

  it('a symlink to /dev/zero is refused at once', async () => {
    const dir = freshDir();
    const model = await folderWithPaths(['zero.bin'], {}, dir);
    await symlink('/dev/zero', join(dir, 'zero.bin'));
    await failure(readTfjsModelFile(model), 'E_MODEL', /'zero\.bin' does not resolve to a regular file inside the model's folder$/);
  });

  it('a shard path naming the folder itself is refused', async () => {
    await failure(readTfjsModelFile(await folderWithPaths(['sub/..'], { 'sub/x': 'x' })), 'E_MODEL', /paths\[0\] 'sub\/\.\.' does not resolve to a regular file/);
  });
});

describe('only regular files are read', () => {
  it('a folder as a shard', async () => {
    const dir = freshDir();
    await mkdir(join(dir, 'w.bin'), { recursive: true });
    await failure(readTfjsModelFile(await folderWithPaths(['w.bin'], {}, dir)), 'E_MODEL', /paths\[0\] 'w\.bin' is not a regular file$/);
  });

  it('a FIFO as a shard, and as model.json, is refused without blocking', async () => {
    const dir = freshDir();
    const model = await folderWithPaths(['w.bin'], {}, dir);
    execFileSync('mkfifo', [join(dir, 'w.bin')]);
    await failure(readTfjsModelFile(model), 'E_MODEL', /paths\[0\] 'w\.bin' is not a regular file$/);
    const fifoJson = join(dir, 'fifo.json');
    execFileSync('mkfifo', [fifoJson]);
    await failure(readTfjsModelFile(fifoJson), 'E_MODEL', /^model file '.*fifo\.json' cannot be read: not a regular file/);
  });

  it('model.json as a symlink to /dev/zero is refused without reading', async () => {
    const dir = freshDir();
    await mkdir(dir, { recursive: true });
    await symlink('/dev/zero', join(dir, 'model.json'));
    await failure(readTfjsModelFile(join(dir, 'model.json')), 'E_MODEL', /cannot be read: not a regular file/);
  });
});

describe('sizes and limits before reading', () => {
  it('a shard far longer than the manifest says is refused by its size (a 5 GiB sparse file)', async () => {
    const dir = freshDir();
    const model = await folderWithPaths(['w.bin'], { 'w.bin': '' }, dir);
    const handle = await open(join(dir, 'w.bin'), 'r+');
    await handle.truncate(5 * 2 ** 30);
    await handle.close();
    await failure(readTfjsModelFile(model), 'E_MODEL', new RegExp(`shard 'w\\.bin' is longer than its manifest says: expected ${WEIGHT_BYTES} bytes, found ${5 * 2 ** 30}$`));
  });

  it('per group: the bytes of its entries against the summed size of its shards', async () => {
    const [a, b] = [WEIGHT_SPECS.slice(0, 2), WEIGHT_SPECS.slice(2)];
    const bytes = weightBytes(1);
    const split = (4 * 3 + 3) * 4;
    const good = { 'g0-1.bin': bytes.subarray(0, 20), 'g0-2.bin': bytes.subarray(20, split), 'g1.bin': bytes.subarray(split) };
    const groups = [{ paths: ['g0-1.bin', 'g0-2.bin'], weights: a }, { paths: ['g1.bin'], weights: b }];
    const dir = freshDir();
    await writeModelFolder(dir, modelJson(groups), good);
    expect(await folderSeed(dir)).toBe(1);
    await writeModelFolder(dir, modelJson(groups), { ...good, 'g0-2.bin': bytes.subarray(20, split + 4) });
    await failure(readTfjsModelFile(join(dir, 'model.json')), 'E_MODEL', new RegExp(`shards 'g0-1\\.bin' \\+ 'g0-2\\.bin' is longer than its manifest says: expected ${split} bytes, found ${split + 4}$`));
  });

  it('a string weight gives a lower bound (4 bytes per element)', async () => {
    const groups = [{ paths: ['w.bin'], weights: WEIGHT_SPECS }, { paths: ['s.bin'], weights: [{ name: 'extra/s', shape: [3], dtype: 'string' }] }];
    const model = await writeModelFolder(freshDir(), modelJson(groups), { 'w.bin': weightBytes(1), 's.bin': 'abcde' });
    await failure(readTfjsModelFile(model), 'E_MODEL', /shard 's\.bin' is truncated: expected at least 12 bytes, found 5$/);
  });

  it('model.json over 64 MiB is refused before it is read (E_MEMORY), and maxJsonBytes sets the limit', async () => {
    const dir = freshDir();
    await mkdir(dir, { recursive: true });
    const big = join(dir, 'model.json');
    const handle = await open(big, 'w');
    await handle.truncate(64 * 2 ** 20 + 1);
    await handle.close();
    await failure(readTfjsModelFile(big), 'E_MEMORY', new RegExp(`^model file '.*model\\.json' is ${64 * 2 ** 20 + 1} bytes, over the limit of ${64 * 2 ** 20} bytes \\(option maxJsonBytes\\)$`));
    const small = await folderWithPaths(['w.bin'], { 'w.bin': weightBytes(1) });
    await failure(readTfjsModelFile(small, { maxJsonBytes: 100 }), 'E_MEMORY', /over the limit of 100 bytes \(option maxJsonBytes\)/);
  });

  it('maxWeightBytes bounds the total of the shards', async () => {
    const model = await folderWithPaths(['w.bin'], { 'w.bin': weightBytes(1) });
    await failure(readTfjsModelFile(model, { maxWeightBytes: WEIGHT_BYTES - 1 }), 'E_MEMORY',
      new RegExp(`the weight shards hold ${WEIGHT_BYTES} bytes, over the limit of ${WEIGHT_BYTES - 1} bytes \\(option maxWeightBytes`));
    expect((await readTfjsModelFile(model, { maxWeightBytes: WEIGHT_BYTES })).weights).toHaveLength(4);
  });

  it.each([0, -1, 1.5, Number.NaN, '10'])('a limit of %s is E_OPTION', async (limit) => {
    const model = await folderWithPaths(['w.bin'], { 'w.bin': weightBytes(1) });
    await failure(readTfjsModelFile(model, { maxJsonBytes: limit as number }), 'E_OPTION', /^maxJsonBytes must be a positive whole number of bytes/);
    await failure(readTfjsModelFile(model, { maxWeightBytes: limit as number }), 'E_OPTION', /^maxWeightBytes must be a positive whole number of bytes/);
  });
});

describe('messages never echo raw bytes from the file', () => {
  it('binary junk as model.json', async () => {
    const model = await writeModelFolder(freshDir(), '\u001b[2J\u0000\u0007{"x":');
    await failure(readTfjsModelFile(model), 'E_MODEL', /model\.json: not valid JSON \(/);
  });

  it('model.json that is not UTF-8', async () => {
    const dir = freshDir();
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'model.json'), Uint8Array.from([0x7b, 0xff, 0xfe, 0x7d]));
    await failure(readTfjsModelFile(join(dir, 'model.json')), 'E_MODEL', /model\.json: not valid JSON \(not UTF-8 text\)$/);
  });

  it('a layer name with terminal escapes, from the parser', async () => {
    const json = modelJson([{ paths: ['w.bin'], weights: WEIGHT_SPECS }]) as { modelTopology: { config: { layers: { class_name: string; config: { name: string } }[] } } };
    json.modelTopology.config.layers[1] = { class_name: 'LSTM\u001b]0;pwned\u0007', config: { name: 'o\u001b[31m' } };
    const model = await writeModelFolder(freshDir(), json, { 'w.bin': weightBytes(1) });
    const message = await failure(readTfjsModelFile(model), 'E_LAYER_KIND', /LSTM/);
    expect(message).not.toContain('\u001b');
  });
});
