/**
 * writeTfjsModelFile / writeAtomically in process: a failure injected before each step leaves
 * the old model (or nothing new), no temporaries and no lock; superseded weights, stale
 * temporaries, the lock and the source folder are handled as documented.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ENormError } from '../../src/errors.js';
import { ATOMIC_WRITE_STEPS, LOCK_FILE, writeAtomically, type AtomicWriteStep } from '../../src/model-io/atomic-write.js';
import { readTfjsModelFile, writeTfjsModelFile } from '../../src/model-io/files.js';
import { entries, folderSeed, modelJson, tinyModel, weightBytes, WEIGHT_SPECS, writeModelFolder } from './files-fixture.js';
import { rejectsWith } from '../helpers/errors.js';
import { tempRoot } from '../helpers/temp.js';

const root = tempRoot('enorm-atomic-');
let counter = 0;
const freshDir = () => join(root(), `case-${++counter}`);
const weightsFile = (seed: number) => `weights.${createHash('sha256').update(weightBytes(seed)).digest('hex').slice(0, 16)}.bin`;
const COMMIT = ATOMIC_WRITE_STEPS.indexOf('commit');

const failure = rejectsWith;

const failAt = (target: AtomicWriteStep) => (step: AtomicWriteStep) => {
  if (step === target) throw new Error(`injected failure at ${step}`);
};

/** The pid of a process that has exited. */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', '']);
  expect(child.status).toBe(0);
  return child.pid as number;
}


describe('a failure before each step', () => {
  it('over an existing model: before the commit the old model stays, after it the new one; never temporaries or the lock', async () => {
    const seen: AtomicWriteStep[] = [];
    await writeTfjsModelFile(tinyModel(1), join(root(), 'probe'), { onStep: (s) => { seen.push(s); } });
    await writeTfjsModelFile(tinyModel(2), join(root(), 'probe'), { onStep: (s) => { seen.push(s); } });
    const overExisting = seen.slice(seen.lastIndexOf('lock'));
    expect(overExisting).toEqual(ATOMIC_WRITE_STEPS.filter((s) => s !== 'mkdir'));

    for (const step of overExisting) {
      const dir = freshDir();
      await writeTfjsModelFile(tinyModel(1), dir);
      const before = await entries(dir);
      await failure(writeTfjsModelFile(tinyModel(2), dir, { onStep: failAt(step) }), 'E_MODEL', new RegExp(`'${dir}'.*: injected failure at ${step}$`));
      const after = await entries(dir);
      if (ATOMIC_WRITE_STEPS.indexOf(step) <= COMMIT) {
        expect({ step, after }).toEqual({ step, after: before });
        expect(await folderSeed(dir)).toBe(1);
      } else {
        // committed: the failure still removes the old weights
        expect({ step, after }).toEqual({ step, after: ['model.json', weightsFile(2)].sort() });
        expect(await folderSeed(dir)).toBe(2);
      }
      // and the next write goes through
      await writeTfjsModelFile(tinyModel(3), dir);
      expect(await folderSeed(dir)).toBe(3);
    }
  });

  it('into a new nested folder: nothing is left behind, not even the folders', async () => {
    for (const step of ATOMIC_WRITE_STEPS.slice(0, COMMIT + 1)) {
      const top = freshDir();
      const dir = join(top, 'a', 'b');
      await failure(writeTfjsModelFile(tinyModel(1), dir, { onStep: failAt(step) }), 'E_MODEL', /injected failure/);
      await expect(stat(top), step).rejects.toThrow(/ENOENT/);
    }
  });

  it('a folder that existed before stays, empty', async () => {
    const dir = freshDir();
    await mkdir(dir);
    await failure(writeTfjsModelFile(tinyModel(1), dir, { onStep: failAt('commit') }), 'E_MODEL', /injected failure/);
    expect(await entries(dir)).toEqual([]);
  });

  it('a model that cannot be serialized creates nothing', async () => {
    const model = tinyModel(1);
    model.weights[0].data = new Float32Array(1);
    const dir = join(freshDir(), 'out');
    await failure(writeTfjsModelFile(model, dir), 'E_MODEL', /h\/kernel/);
    await expect(stat(join(dir, '..'))).rejects.toThrow(/ENOENT/);
  });
});

describe('superseded weights', () => {
  it('removes only the weight files the old model.json named, by the weights.bin or weights.<hash>.bin names', async () => {
    const dir = freshDir();
    const unnamed = 'weights.0123456789abcdef.bin';
    const manifest = [{ paths: ['weights.bin'], weights: WEIGHT_SPECS }, { paths: ['notes.txt', '../victim.bin', 'sub/weights.0123456789abcdef.bin'], weights: [] }];
    await writeModelFolder(dir, modelJson(manifest), { 'weights.bin': weightBytes(1), 'notes.txt': 'keep', [unnamed]: 'keep', 'sub/weights.0123456789abcdef.bin': 'keep' });
    await writeFile(join(dir, '..', 'victim.bin'), 'keep');
    const paths = await writeTfjsModelFile(tinyModel(2), dir);
    expect(paths).toEqual([join(dir, 'model.json'), join(dir, weightsFile(2))]);
    expect(await entries(dir)).toEqual(['model.json', 'notes.txt', 'sub', unnamed, weightsFile(2)].sort());
    expect(await readFile(join(dir, '..', 'victim.bin'), 'utf8')).toBe('keep');
    expect(await folderSeed(dir)).toBe(2);
  });

  it('writing the same weights again keeps their file', async () => {
    const dir = freshDir();
    await writeTfjsModelFile(tinyModel(4), dir);
    await writeTfjsModelFile(tinyModel(4), dir);
    expect(await entries(dir)).toEqual(['model.json', weightsFile(4)]);
    expect(await folderSeed(dir)).toBe(4);
  });
});

describe('temporaries and the lock', () => {
  it('removes the temporaries of dead writers only, and never files it did not name', async () => {
    const dir = freshDir();
    await writeTfjsModelFile(tinyModel(1), dir);
    const dead = `.enorm-${deadPid()}-0a1b2c.tmp`;
    const live = `.enorm-${process.ppid}-0a1b2c.tmp`;
    const foreign = ['.enorm-notes.tmp', 'x.tmp', `.enorm-${deadPid()}-0a1b2c.tmp.keep`];
    for (const name of [dead, live, ...foreign]) await writeFile(join(dir, name), 'x');
    await writeTfjsModelFile(tinyModel(2), dir);
    expect(await entries(dir)).toEqual(['model.json', weightsFile(2), live, ...foreign].sort());
  });

  it('a live lock holder: E_MODEL naming its pid, and nothing changes', async () => {
    const dir = freshDir();
    await writeTfjsModelFile(tinyModel(1), dir);
    const lock = `${process.ppid} 00ff\n`;
    await writeFile(join(dir, LOCK_FILE), lock);
    const before = await entries(dir);
    await failure(writeTfjsModelFile(tinyModel(2), dir), 'E_MODEL', new RegExp(`^another enorm process \\(pid ${process.ppid}\\) is writing to '${dir}'$`));
    expect(await entries(dir)).toEqual(before);
    expect(await readFile(join(dir, LOCK_FILE), 'utf8')).toBe(lock);
    expect(await folderSeed(dir)).toBe(1);
  });

  it('a lock that names no pid is not taken over', async () => {
    const dir = freshDir();
    await mkdir(dir);
    await writeFile(join(dir, LOCK_FILE), 'garbage');
    await failure(writeTfjsModelFile(tinyModel(1), dir), 'E_MODEL', /may be writing to .*names no pid/);
    expect(await entries(dir)).toEqual([LOCK_FILE]);
  });

  it('a dead holder\'s lock is stale: taken over, and released after the write', async () => {
    const dir = freshDir();
    await writeTfjsModelFile(tinyModel(1), dir);
    await writeFile(join(dir, LOCK_FILE), `${deadPid()} 00ff\n`);
    await writeTfjsModelFile(tinyModel(2), dir);
    expect(await entries(dir)).toEqual(['model.json', weightsFile(2)]);
    expect(await folderSeed(dir)).toBe(2);
  });

  it('two writes at once in one process: the second finds the first one\'s lock', async () => {
    const dir = freshDir();
    await writeTfjsModelFile(tinyModel(1), dir);
    let message = '';
    // The first write holds the lock while its hook awaits the whole second write.
    await writeTfjsModelFile(tinyModel(2), dir, {
      onStep: async (s) => {
        if (s === 'write-manifest') message = await failure(writeTfjsModelFile(tinyModel(3), dir), 'E_MODEL', /is writing to/);
      },
    });
    expect(message).toBe(`another enorm process (pid ${process.pid}) is writing to '${dir}'`);
    expect(await folderSeed(dir)).toBe(2);
    expect(await entries(dir)).toEqual(['model.json', weightsFile(2)]);
  });
});

describe('the source folder is refused', () => {
  it('a model read from a folder cannot be written back into it, directly or through a symlink', async () => {
    const dir = freshDir();
    await writeTfjsModelFile(tinyModel(1), dir);
    const before = await entries(dir);
    const model = await readTfjsModelFile(join(dir, 'model.json'));
    await symlink(dir, `${dir}-link`);
    for (const target of [dir, `${dir}-link`, `${dir}/.`]) {
      await failure(writeTfjsModelFile(model, target), 'E_MODEL', /-o must not be the input model's folder/);
    }
    expect(await entries(dir)).toEqual(before);
    await writeTfjsModelFile(model, join(dir, '..', 'elsewhere'));
    expect(await folderSeed(join(dir, '..', 'elsewhere'))).toBe(1);
  });

  it('sourceDir names it for models parsed elsewhere', async () => {
    const dir = freshDir();
    await writeTfjsModelFile(tinyModel(1), dir);
    await failure(writeTfjsModelFile(tinyModel(2), dir, { sourceDir: dir }), 'E_MODEL', /-o must not be the input model's folder/);
    expect(await folderSeed(dir)).toBe(1);
  });
});

describe('writeAtomically', () => {
  it('refuses file names that are not plain names', async () => {
    const dir = freshDir();
    for (const name of ['a/b', '..', '', LOCK_FILE, '.enorm-1-ab.tmp']) {
      await failure(writeAtomically(dir, { data: [{ name, bytes: new Uint8Array(1) }], manifest: { name: 'm.json', bytes: new Uint8Array(1) } }), 'E_OPTION', /is not a plain file name/);
    }
    await expect(stat(dir)).rejects.toThrow(/ENOENT/);
  });

  it('writes another format the same way: data files, then the manifest', async () => {
    const dir = freshDir();
    const paths = await writeAtomically(dir, { data: [{ name: 'a.dat', bytes: Uint8Array.of(1, 2) }], manifest: { name: 'graph.json', bytes: new TextEncoder().encode('{"data":"a.dat"}') } });
    expect(paths).toEqual([join(dir, 'graph.json'), join(dir, 'a.dat')]);
    const next = await writeAtomically(dir, { data: [{ name: 'b.dat', bytes: Uint8Array.of(3) }], manifest: { name: 'graph.json', bytes: new TextEncoder().encode('{}') }, references: (m) => (m ? [JSON.parse(new TextDecoder().decode(m)).data].filter(Boolean) : []), removable: (n) => n.endsWith('.dat') });
    expect(next).toEqual([join(dir, 'graph.json'), join(dir, 'b.dat')]);
    expect(await entries(dir)).toEqual(['b.dat', 'graph.json']);
  });
});
