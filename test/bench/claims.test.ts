// Claims and locks between runners that share a results directory: exclusive while the owner lives,
// taken over once it is dead, and a lock that waits, then names its holder.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { alive, claimPath, tryClaim, withLock } from '../../bench/experiments/claims.js';

const dir = () => mkdtempSync(join(tmpdir(), 'enorm-claims-'));
/** The pid of a process that has exited. */
const deadPid = () => Number(execFileSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }));

describe('tryClaim', () => {
  it('is exclusive until released, and writes the owner pid', () => {
    const path = join(dir(), 'sub', 'task.pid');
    const release = tryClaim(path);
    expect(release).toBeTypeOf('function');
    expect(readFileSync(path, 'utf8')).toBe(String(process.pid));
    expect(tryClaim(path)).toBeNull();
    release!();
    expect(existsSync(path)).toBe(false);
    const again = tryClaim(path);
    expect(again).toBeTypeOf('function');
    again!();
  });

  it('leaves a claim held by another live process alone', () => {
    const path = join(dir(), 'task.pid');
    writeFileSync(path, String(process.ppid));
    expect(alive(process.ppid)).toBe(true);
    expect(tryClaim(path)).toBeNull();
    expect(readFileSync(path, 'utf8')).toBe(String(process.ppid));
  });

  it('takes over a claim whose owner is dead', () => {
    const path = join(dir(), 'task.pid');
    const pid = deadPid();
    expect(alive(pid)).toBe(false);
    writeFileSync(path, String(pid));
    const release = tryClaim(path);
    expect(release).toBeTypeOf('function');
    expect(readFileSync(path, 'utf8')).toBe(String(process.pid));
    release!();
  });

  it('treats an unwritten claim as live for a while, then as stale', () => {
    const path = join(dir(), 'task.pid');
    writeFileSync(path, '');
    expect(tryClaim(path)).toBeNull();
    const old = new Date(Date.now() - 60_000);
    utimesSync(path, old, old);
    const release = tryClaim(path);
    expect(release).toBeTypeOf('function');
    release!();
  });
});

describe('withLock', () => {
  it('runs the function holding the lock and removes it, also when the function throws', () => {
    const path = join(dir(), 'rows.json.lock');
    expect(withLock(path, () => readFileSync(path, 'utf8'))).toBe(String(process.pid));
    expect(existsSync(path)).toBe(false);
    expect(() => withLock(path, () => { throw new Error('inside'); })).toThrow('inside');
    expect(existsSync(path)).toBe(false);
  });

  it('waits for a live holder and gives up naming it', () => {
    const path = join(dir(), 'rows.json.lock');
    writeFileSync(path, String(process.ppid));
    const started = Date.now();
    expect(() => withLock(path, () => 1, 200)).toThrow(`locked by process ${process.ppid}`);
    expect(Date.now() - started).toBeGreaterThanOrEqual(200);
  });
});

describe('claimPath', () => {
  it('gives each task label its own file name under .claims', () => {
    const a = claimPath('/r', 'fc-depth-w500 lr search enorm k=14 lr=0.1');
    const b = claimPath('/r', 'fc-depth-w500 lr search enorm+bn k=14 lr=0.1');
    expect(a).toBe('/r/.claims/fc-depth-w500_lr_search_enorm_k=14_lr=0.1.pid');
    expect(b).not.toBe(a);
    expect(claimPath('/r', '../x/y')).toBe('/r/.claims/.._x_y.pid');
  });
});
