/**
 * Crash safety of writeTfjsModelFile out of process: a child (atomic-child.ts) SIGKILLs itself
 * before its n-th write step, for every n. The folder must then read as the complete old model or
 * the complete new one (by their weight values), and the next write must succeed and remove the
 * dead writer's temporaries and stale lock. A paused child shows a second writer the lock.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ENormError } from '../../src/errors.js';
import { ATOMIC_WRITE_STEPS, LOCK_FILE, type AtomicWriteStep } from '../../src/model-io/atomic-write.js';
import { writeTfjsModelFile } from '../../src/model-io/files.js';
import { entries, folderSeed, tinyModel, weightBytes } from './files-fixture.js';
import { tempRoot } from '../helpers/temp.js';

const CHILD = fileURLToPath(new URL('./atomic-child.ts', import.meta.url));
const weightsFile = (seed: number) => `weights.${createHash('sha256').update(weightBytes(seed)).digest('hex').slice(0, 16)}.bin`;
const root = tempRoot('enorm-crash-');
let counter = 0;
const freshDir = () => join(root(), `case-${++counter}`);

function runChild(args: string[]): { done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>; pid: number } {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal, stderr }));
  });
  return { done, pid: child.pid as number };
}

/** Runs check(1..count), at most three at a time (each starts a child process). */
async function forEachStep(count: number, check: (n: number) => Promise<void>): Promise<void> {
  let next = 1;
  const worker = async () => {
    while (next <= count) await check(next++);
  };
  await Promise.all([worker(), worker(), worker()]);
}

/** The steps of a write over an existing model, and into a new folder, as the writer calls them. */
async function stepsOf(overExisting: boolean): Promise<AtomicWriteStep[]> {
  const dir = freshDir();
  if (overExisting) await writeTfjsModelFile(tinyModel(1), dir);
  const steps: AtomicWriteStep[] = [];
  await writeTfjsModelFile(tinyModel(2), dir, { onStep: (s) => { steps.push(s); } });
  return steps;
}


describe('SIGKILL before each step', () => {
  it('over an existing model: old or new, complete; the next write cleans up', async () => {
    const steps = await stepsOf(true);
    expect(steps).toEqual(ATOMIC_WRITE_STEPS.filter((s) => s !== 'mkdir'));
    await forEachStep(steps.length, async (n) => {
      const step = steps[n - 1];
      const dir = freshDir();
      await writeTfjsModelFile(tinyModel(1), dir);
      const result = await runChild([dir, '2', 'kill', String(n)]).done;
      expect({ step, signal: result.signal }).toEqual({ step, signal: 'SIGKILL' });
      const committed = ATOMIC_WRITE_STEPS.indexOf(step) > ATOMIC_WRITE_STEPS.indexOf('commit');
      expect({ step, seed: await folderSeed(dir) }).toEqual({ step, seed: committed ? 2 : 1 });
      if (ATOMIC_WRITE_STEPS.indexOf(step) > ATOMIC_WRITE_STEPS.indexOf('lock')) expect(await entries(dir)).toContain(LOCK_FILE);

      await writeTfjsModelFile(tinyModel(3), dir);
      expect(await folderSeed(dir)).toBe(3);
      // the dead writer's temporaries, lock, and whichever weights file it left unnamed are gone
      expect({ step, files: await entries(dir) }).toEqual({ step, files: ['model.json', weightsFile(3)].sort() });
    });
  });

  it('into a new folder: no model or the complete new one; the next write cleans up', async () => {
    const steps = await stepsOf(false);
    expect(steps).toEqual([...ATOMIC_WRITE_STEPS]);
    await forEachStep(steps.length, async (n) => {
      const step = steps[n - 1];
      const dir = join(freshDir(), 'out');
      const result = await runChild([dir, '2', 'kill', String(n)]).done;
      expect({ step, signal: result.signal }).toEqual({ step, signal: 'SIGKILL' });
      if (ATOMIC_WRITE_STEPS.indexOf(step) > ATOMIC_WRITE_STEPS.indexOf('commit')) {
        expect(await folderSeed(dir)).toBe(2);
      } else {
        await expect(stat(join(dir, 'model.json')), step).rejects.toThrow(/ENOENT/);
      }
      await writeTfjsModelFile(tinyModel(3), dir);
      expect({ step, files: await entries(dir) }).toEqual({ step, files: ['model.json', weightsFile(3)].sort() });
    });
  });
});

describe('a concurrent writer', () => {
  it('finds the lock of a writer in another process, and changes nothing', async () => {
    const dir = freshDir();
    await writeTfjsModelFile(tinyModel(1), dir);
    const ready = join(root(), `ready-${counter}`);
    const go = join(root(), `go-${counter}`);
    const child = runChild([dir, '2', 'pause', 'write-manifest', ready, go]);
    // wait until the child holds the lock and has placed its weights (it writes `ready` then)
    for (let i = 0; !existsSync(ready); i++) {
      if (i > 6000) throw new Error(`the child did not start: ${(await Promise.race([child.done, Promise.resolve(undefined)]))?.stderr}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(Number(await readFile(ready, 'utf8'))).toBe(child.pid);
    const e = await writeTfjsModelFile(tinyModel(3), dir).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(ENormError);
    expect((e as ENormError).message).toBe(`another enorm process (pid ${child.pid}) is writing to '${dir}'`);
    expect(await folderSeed(dir)).toBe(1);

    await writeFile(go, '');
    expect((await child.done).code).toBe(0);
    expect(await folderSeed(dir)).toBe(2);
    expect(await entries(dir)).toEqual(['model.json', weightsFile(2)]);
  });
});
