/**
 * The writer's lock on an output folder, and the file helpers atomic-write.ts shares with it.
 *
 * <dir>/.enorm.lock holds "pid token" on its first line, then (once the writer knows them) the
 * names of the files a crash could leave behind: its new data files and the old ones it is about
 * to supersede. It is made by link() of a complete temporary, so it is never seen empty. A live
 * holder is an error; a dead holder's lock is stale: the next writer takes it over and gets its
 * names, to remove those that the committed manifest does not refer to.
 */
import { randomBytes } from 'node:crypto';
import { link, lstat, open, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ENormError } from '../errors.js';
import { readRegularFile } from './node-read.js';

export const LOCK_FILE = '.enorm.lock';
/** Temporaries: `.enorm-<writer pid>-<random hex>.tmp`. */
export const OWN_FILE = /^\.enorm-(\d+)-[0-9a-f]+\.tmp$/;
const MAX_LOCK_BYTES = 1024 * 1024;

export function tempName(): string {
  return `.enorm-${process.pid}-${randomBytes(6).toString('hex')}.tmp`;
}

export function isBareName(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !/[/\\\0\n]/.test(name);
}

/** True unless `pid` is certainly gone (ESRCH); EPERM means it lives under another user. */
export function isAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** Creates `path` (failing if it exists), writes `bytes`, fsyncs, closes. */
export async function writeDurably(path: string, bytes: Uint8Array): Promise<void> {
  const handle = await open(path, 'wx');
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** The holder's pid (a positive integer: 0 and negatives would address process groups) and its names. */
function parseLock(text: string): { pid?: number; head: string; names: string[] } {
  const [head, ...rest] = text.split('\n');
  const m = /^(\d{1,10}) [0-9a-f]+$/.exec(head);
  const pid = m ? Number(m[1]) : NaN;
  return { pid: Number.isSafeInteger(pid) && pid > 0 && pid < 2 ** 31 ? pid : undefined, head, names: rest.filter(isBareName) };
}

export interface HeldLock {
  /** The names a dead holder's stale lock listed (empty unless one was taken over). */
  stalePlan: string[];
  /** Lists the names this write could leave behind, for whoever finds the lock stale. */
  recordPlan(names: string[]): Promise<void>;
  /** Removes the lock while it is still this writer's. */
  release(): Promise<void>;
}

export async function acquireLock(dir: string): Promise<HeldLock> {
  const lockPath = join(dir, LOCK_FILE);
  const head = `${process.pid} ${randomBytes(8).toString('hex')}`;
  const encode = (names: string[]) => new TextEncoder().encode(`${[head, ...names].join('\n')}\n`);
  const readLock = () => readRegularFile(lockPath, { maxBytes: MAX_LOCK_BYTES, noFollow: true }).then((b) => new TextDecoder().decode(b));
  const mine = join(dir, tempName());
  await writeDurably(mine, encode([]));
  const stalePlan: string[] = [];
  try {
    for (let attempt = 0; attempt < 4; attempt++) {
      try {
        await link(mine, lockPath);
        return {
          stalePlan,
          async recordPlan(names) {
            const next = join(dir, tempName());
            await writeDurably(next, encode(names));
            await rename(next, lockPath); // replaces our own lock in one step
          },
          async release() {
            const now = await readLock().catch(() => undefined);
            if (now !== undefined && parseLock(now).head === head) await unlink(lockPath).catch(() => undefined);
          },
        };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const held = await lstat(lockPath).catch(() => undefined);
      if (!held) continue; // released meanwhile
      const lock = parseLock(await readLock().catch(() => ''));
      if (lock.pid === undefined) {
        throw new ENormError('E_MODEL', `another enorm process may be writing to '${dir}' (its lock file ${LOCK_FILE} names no pid; remove it if no enorm is running)`);
      }
      if (isAlive(lock.pid)) throw new ENormError('E_MODEL', `another enorm process (pid ${lock.pid}) is writing to '${dir}'`);
      // Stale. Rename it to a private name first: of two writers that both saw it stale, the one
      // whose renamed file is not that inode has taken a fresh lock, puts it back and finds it held.
      const grave = join(dir, tempName());
      try {
        await rename(lockPath, grave);
      } catch {
        continue; // another writer took it over first
      }
      const moved = await lstat(grave);
      if (moved.ino === held.ino && moved.dev === held.dev) stalePlan.push(...lock.names);
      else await link(grave, lockPath).catch(() => undefined);
      await unlink(grave).catch(() => undefined);
    }
    throw new ENormError('E_MODEL', `another enorm process is writing to '${dir}' (its lock file ${LOCK_FILE} keeps changing)`);
  } finally {
    await unlink(mine).catch(() => undefined);
  }
}
