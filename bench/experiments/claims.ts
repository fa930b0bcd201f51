/**
 * Claims let several runners share one results directory (one per core: tfjs-backend-wasm trains on
 * one thread). A claim is a file holding its owner's pid, created exclusively (O_EXCL), so two
 * processes cannot both take it. A claim whose owner is no longer alive (a runner killed with ^C or
 * by a reboot) is stale, and the next taker removes it. Owners are processes on this machine.
 */
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
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

/** The pid written in a claim file, or NaN if it is unreadable or half-written. */
function ownerOf(path: string): number {
  try {
    return Number.parseInt(readFileSync(path, 'utf8'), 10);
  } catch {
    return Number.NaN;
  }
}

function mtimeMs(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

/**
 * Takes the claim file at `path` for this process: returns its release function, or null when a
 * live process holds it. A stale claim (dead owner) is removed and taken.
 */
export function tryClaim(path: string): (() => void) | null {
  mkdirSync(dirname(path), { recursive: true });
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(path, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const owner = ownerOf(path);
      // An owner caught between creating the file and writing its pid reads as NaN: live for a while.
      const unwritten = Number.isNaN(owner) && Date.now() - mtimeMs(path) < 10_000;
      if (owner === process.pid || unwritten || alive(owner)) return null;
      rmSync(path, { force: true });
    }
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
    if (Date.now() - started > timeoutMs) throw new Error(`${path} has been locked by process ${ownerOf(path)} for over ${timeoutMs / 1000} s`);
    Atomics.wait(nap, 0, 0, 10);
  }
}

/** Where a task's claim lives: one file per task label under the results directory. */
export function claimPath(resultsDir: string, label: string): string {
  return join(resultsDir, '.claims', `${label.replace(/[^A-Za-z0-9.=+-]+/g, '_')}.pid`);
}
