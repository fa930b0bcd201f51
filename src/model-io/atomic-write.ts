/**
 * Crash-safe writing of a model folder in Node: data files under content-derived names, then one
 * manifest file renamed over the old one. That rename is the only commit point: before it the
 * folder holds the old model, after it the new one, and a reader never sees a mix.
 *
 *   lock      take <dir>/.enorm.lock (atomic-lock.ts); a live holder is an error, a dead one's is taken over
 *   clean     remove dead writers' temporaries, and the files a stale lock lists that the manifest does not name
 *   plan      list in the lock the files this write could leave behind (new data, superseded data)
 *   data      each file written to a temporary, fsync'd, renamed to its final name; fsync the folder
 *   manifest  written to a temporary, fsync'd, renamed over the old manifest   <- commit
 *   then      fsync the folder, remove the superseded files, release the lock
 *
 * On a failure before the commit the new data files are removed again, after it the superseded
 * ones; after a crash (SIGKILL, power cut) the next writer does that. Format-neutral: the caller
 * names the files and says which names its manifests refer to.
 */
import { constants } from 'node:fs';
import { lstat, mkdir, open, readdir, rename, rmdir, stat, unlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { ENormError } from '../errors.js';
import { acquireLock, isAlive, isBareName, LOCK_FILE, OWN_FILE, tempName, writeDurably, type HeldLock } from './atomic-lock.js';
import { readRegularFile } from './node-read.js';
import { firstLine } from './text.js';

export { LOCK_FILE } from './atomic-lock.js';

/** Every step, in order; `onStep` is called before each (the weight steps once per data file). */
export const ATOMIC_WRITE_STEPS = [
  'mkdir', 'lock', 'clean-stale', 'read-old', 'write-plan', 'write-weights', 'rename-weights',
  'write-manifest', 'commit', 'sync-dir', 'remove-superseded', 'unlock',
] as const;
export type AtomicWriteStep = (typeof ATOMIC_WRITE_STEPS)[number];

export interface AtomicFile {
  /** A bare file name inside the folder. */
  name: string;
  bytes: Uint8Array;
}

export interface AtomicWriteSpec {
  /** Files the manifest refers to. Give them names that change with their content (a hash). */
  data: AtomicFile[];
  /** The file whose rename commits the write (model.json). */
  manifest: AtomicFile;
  /** The file names a manifest of this format refers to (its bytes; undefined where there is none). */
  references?: (manifest: Uint8Array | undefined) => string[];
  /**
   * Whether a data file of this name may be removed once no manifest refers to it (tfjs:
   * weights.<hash>.bin and weights.bin). Nothing else is ever removed. Default: none may.
   */
  removable?: (name: string) => boolean;
  /** Called (and awaited) before each step; what it throws fails the write at that point (crash tests). */
  onStep?: (step: AtomicWriteStep) => void | Promise<void>;
}

const MAX_OLD_MANIFEST_BYTES = 64 * 1024 * 1024;

/** fsync the folder, so its renames survive a power cut; platforms that cannot (Windows) are skipped. */
async function syncFolder(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, constants.O_RDONLY);
    await handle.sync();
  } catch (e) {
    if (!['EISDIR', 'EINVAL', 'EPERM', 'EBADF', 'ENOTSUP', 'EACCES'].includes((e as NodeJS.ErrnoException).code ?? '')) throw e;
  } finally {
    await handle?.close();
  }
}

/** Removes `.enorm-<pid>-<random>.tmp` files whose pid is dead: temporaries of crashed writers. */
async function removeDeadTemporaries(dir: string): Promise<void> {
  for (const name of await readdir(dir)) {
    const m = OWN_FILE.exec(name);
    if (m && !isAlive(Number(m[1]))) await unlink(join(dir, name)).catch(() => undefined);
  }
}

/** Removes the folders mkdir created, innermost first, while they are empty. */
async function removeCreatedFolders(dir: string, firstCreated: string): Promise<void> {
  const top = resolve(firstCreated);
  for (let d = resolve(dir); ; d = dirname(d)) {
    if (!(await rmdir(d).then(() => true, () => false)) || d === top || dirname(d) === d) return;
  }
}

/** Removes the listed files, but only names this format may remove, that no live manifest names. */
async function removeUnreferenced(dir: string, names: Iterable<string>, keep: Set<string>, removable: (name: string) => boolean): Promise<void> {
  for (const name of new Set(names)) {
    if (isBareName(name) && !keep.has(name) && name !== LOCK_FILE && !OWN_FILE.test(name) && removable(name)) {
      await unlink(join(dir, name)).catch(() => undefined);
    }
  }
}

/** Writes the files into `dir` (created if missing); resolves to their paths, manifest first. */
export async function writeAtomically(dir: string, spec: AtomicWriteSpec): Promise<string[]> {
  const names = [spec.manifest.name, ...spec.data.map((f) => f.name)];
  for (const name of names) {
    if (!isBareName(name) || name === LOCK_FILE || OWN_FILE.test(name)) throw new ENormError('E_OPTION', `writeAtomically: ${JSON.stringify(name)} is not a plain file name`);
  }
  if (new Set(names).size !== names.length) throw new ENormError('E_OPTION', 'writeAtomically: two files have the same name');
  const step = async (s: AtomicWriteStep) => spec.onStep?.(s);
  const references = spec.references ?? (() => []);
  const removable = spec.removable ?? (() => false);
  const manifestPath = join(dir, spec.manifest.name);
  const readManifest = () => readRegularFile(manifestPath, { maxBytes: MAX_OLD_MANIFEST_BYTES, noFollow: true }).catch(() => undefined);
  const temporaries = new Set<string>();
  const placed: string[] = []; // data files that were not there before this write
  let superseded: string[] = [];
  let firstCreated: string | undefined;
  let lock: HeldLock | undefined;
  let committed = false;
  try {
    if (!(await stat(dir).catch(() => undefined))?.isDirectory()) {
      await step('mkdir');
      firstCreated = await mkdir(dir, { recursive: true });
    }
    await step('lock');
    lock = await acquireLock(dir);
    await step('clean-stale');
    await removeDeadTemporaries(dir);
    await step('read-old');
    const live = new Set(references(await readManifest()));
    await removeUnreferenced(dir, lock.stalePlan, live, removable); // what a crashed writer left
    superseded = [...live].filter((n) => !names.includes(n));
    await step('write-plan');
    await lock.recordPlan([...spec.data.map((f) => f.name), ...superseded.filter(removable)]);

    for (const file of spec.data) {
      await step('write-weights');
      const temporary = join(dir, tempName());
      temporaries.add(temporary);
      await writeDurably(temporary, file.bytes);
      await step('rename-weights');
      const target = join(dir, file.name);
      const wasThere = await lstat(target).then(() => true, () => false); // same name, same content
      await rename(temporary, target);
      temporaries.delete(temporary);
      if (!wasThere) placed.push(file.name);
    }
    await syncFolder(dir); // the data renames are durable before the manifest names them

    await step('write-manifest');
    const temporary = join(dir, tempName());
    temporaries.add(temporary);
    await writeDurably(temporary, spec.manifest.bytes);
    await step('commit');
    await rename(temporary, manifestPath);
    temporaries.delete(temporary);
    committed = true;
    await step('sync-dir');
    await syncFolder(dir);
    await step('remove-superseded');
    await removeUnreferenced(dir, superseded, new Set(names), removable);
    await step('unlock');
    return [manifestPath, ...spec.data.map((f) => join(dir, f.name))];
  } catch (e) {
    for (const t of temporaries) await unlink(t).catch(() => undefined);
    // Whichever model is in place, the other one's data files go.
    if (committed) await removeUnreferenced(dir, superseded, new Set(names), removable);
    else for (const name of placed) await unlink(join(dir, name)).catch(() => undefined);
    if (firstCreated !== undefined && !committed) {
      await lock?.release();
      lock = undefined;
      await removeCreatedFolders(dir, firstCreated);
    }
    if (e instanceof ENormError) throw e;
    const what = committed ? `the model was written to '${dir}', but finishing failed` : `cannot write the model to '${dir}'`;
    throw new ENormError('E_MODEL', `${what}: ${firstLine(e)}`);
  } finally {
    await lock?.release();
  }
}
