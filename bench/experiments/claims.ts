/**
 * Claims let several runners share one results directory (one per core: tfjs-backend-wasm trains on
 * one thread). A claim is a file holding its owner's pid, created exclusively (O_EXCL), so two
 * processes cannot both take it. A claim whose owner is no longer alive (a runner killed with ^C or
 * by a reboot) is stale, and the next taker removes it. Owners are processes on this machine.
 */
import { closeSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** Whether a process with this pid exists (EPERM: it does, but is not ours). */
export function alive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The pid written in a claim file: NaN if it is empty or half-written, null if the file is gone. */
function ownerOf(path: string): number | null {
  try {
    return Number.parseInt(readFileSync(path, 'utf8'), 10);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

function ageMs(path: string): number {
  try {
    return Date.now() - statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

const sameOwner = (a: number | null, b: number | null) => a === b || (Number.isNaN(a) && Number.isNaN(b));

/**
 * Takes the claim file at `path` for this process: returns its release function, or null when a
 * live process holds it. A stale claim (its owner dead, or never written and over 10 s old) is moved
 * aside and the claim taken. Moving it aside first, then checking that what was moved is the stale
 * claim (and putting back anything else), keeps two takers of one stale claim from removing each
 * other's new claims: a file removed by name could be one created after its owner was read.
 */
export function tryClaim(path: string): (() => void) | null {
  mkdirSync(dirname(path), { recursive: true });
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(path, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const owner = ownerOf(path);
    if (owner === null) continue; // released in the meantime: try again
    // An owner caught between creating the file and writing its pid reads as NaN: live for a while.
    const unwritten = Number.isNaN(owner) && ageMs(path) < 10_000;
    if (owner === process.pid || unwritten || alive(owner)) return null;
    const aside = `${path}.${process.pid}.stale`;
    try {
      renameSync(path, aside);
    } catch {
      continue; // another taker moved it first
    }
    if (!sameOwner(ownerOf(aside), owner)) {
      try {
        linkSync(aside, path); // a live claim made since we read the owner: put it back
      } catch {
        // its name was taken again meanwhile; the claim now there stands
      }
    }
    rmSync(aside, { force: true });
  }
  return null;
}

/** Runs `fn` holding the lock file `path`, waiting (up to `timeoutMs`) while another live process holds it. */
export function withLock<T>(path: string, fn: () => T, timeoutMs = 30_000): T {
  const started = Date.now();
  const nap = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    const release = tryClaim(path);
    if (release) {
      try {
        return fn();
      } finally {
        release();
      }
    }
    if (Date.now() - started > timeoutMs) throw new Error(`${path} has been locked by process ${ownerOf(path) ?? '(released)'} for over ${timeoutMs / 1000} s`);
    Atomics.wait(nap, 0, 0, 10);
  }
}

/** Where a task's claim lives: one file per task label under the results directory. */
export function claimPath(resultsDir: string, label: string): string {
  return join(resultsDir, '.claims', `${label.replace(/[^A-Za-z0-9.=+-]+/g, '_')}.pid`);
}
