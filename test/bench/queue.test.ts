// The runner's loop shared between runners: order, prerequisites, tasks held by another runner,
// and a prerequisite nobody is making.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { claimPath } from '../../bench/experiments/claims.js';
import type { Task } from '../../bench/experiments/context.js';
import { runShared } from '../../bench/experiments/queue.js';

/** Tasks that record the order they ran in; `needs` names tasks that must be done first. */
function tasks(spec: { label: string; needs?: string[] }[], ran: string[], done = new Set<string>()): Task[] {
  return spec.map(({ label, needs }) => ({
    label, cost: 2,
    done: () => done.has(label),
    ready: needs ? () => needs.every((n) => done.has(n)) : undefined,
    run: async (progress) => {
      if (needs && !needs.every((n) => done.has(n))) throw new Error(`${label}: ${needs.join(', ')} missing`);
      progress(1);
      ran.push(label);
      done.add(label);
    },
  }));
}
const quiet = { progress: () => {}, waiting: () => {} };

describe('runShared', () => {
  it('runs every task once, in order, and leaves no claim behind', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'enorm-queue-'));
    const ran: string[] = [];
    const seen: number[] = [];
    await runShared(tasks([{ label: 'a' }, { label: 'b' }, { label: 'c' }], ran), dir, { progress: (at) => seen.push(at), waiting: () => {} });
    expect(ran).toEqual(['a', 'b', 'c']);
    expect(Math.max(...seen)).toBe(5); // the last task's one unit, after two whole tasks
    expect(seen).toEqual([...seen].sort((x, y) => x - y));
    expect(readdirSync(join(dir, '.claims'))).toEqual([]);
  });

  it('skips what is done, and a task until its prerequisites are', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'enorm-queue-'));
    const ran: string[] = [];
    await runShared(tasks([{ label: 'result', needs: ['search'] }, { label: 'search' }, { label: 'old' }], ran, new Set(['old'])), dir, quiet);
    expect(ran).toEqual(['search', 'result']);
  });

  it("runs other tasks while one is held by a live runner, then waits for it", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'enorm-queue-'));
    const held = claimPath(dir, 'search');
    mkdirSync(dirname(held), { recursive: true });
    writeFileSync(held, String(process.ppid)); // a live process that is not this one
    const ran: string[] = [];
    const done = new Set<string>();
    const waited: string[][] = [];
    const list = tasks([{ label: 'search' }, { label: 'result', needs: ['search'] }, { label: 'other' }], ran, done);
    const running = runShared(list, dir, { progress: () => {}, waiting: (labels) => waited.push(labels) }, 20);
    await new Promise((r) => setTimeout(r, 100));
    expect(ran).toEqual(['other']);
    expect(waited[0]).toEqual(['search', 'result']);
    done.add('search'); // the other runner's row lands and its claim goes
    rmSync(held);
    await running;
    expect(ran).toEqual(['other', 'result']);
  });

  it("runs a task whose prerequisite nobody is making, so that its error says what is missing", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'enorm-queue-'));
    const list = tasks([{ label: 'result', needs: ['search'] }], []);
    await expect(runShared(list, dir, quiet, 20)).rejects.toThrow('result: search missing');
  });
});
