// Result files shared by runners: rows another runner wrote are seen, and concurrent writers lose
// no row (add re-reads and rewrites the file under a lock).
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { bestLr, ResultFile } from '../../bench/experiments/store.js';

const run = promisify(execFile);
type R = { runner: string; i: number };

describe('ResultFile', () => {
  it("sees rows another instance added, and adds to them rather than over them", () => {
    const dir = mkdtempSync(join(tmpdir(), 'enorm-store-'));
    const a = new ResultFile<R>(dir, 'rows');
    const b = new ResultFile<R>(dir, 'rows');
    expect(a.all()).toEqual([]);
    a.add({ runner: 'a', i: 0 });
    expect(b.find({ runner: 'a' })).toEqual({ runner: 'a', i: 0 });
    b.add({ runner: 'b', i: 0 });
    a.add({ runner: 'a', i: 1 });
    expect(b.all()).toEqual([{ runner: 'a', i: 0 }, { runner: 'b', i: 0 }, { runner: 'a', i: 1 }]);
    expect(JSON.parse(readFileSync(join(dir, 'rows.json'), 'utf8'))).toHaveLength(3);
    expect(readdirSync(dir)).toEqual(['rows.json']); // no lock or temp file left
  });

  it('adds a row with a key only when no row matching the key is on disk yet', () => {
    const dir = mkdtempSync(join(tmpdir(), 'enorm-store-'));
    const a = new ResultFile<R>(dir, 'rows');
    const b = new ResultFile<R>(dir, 'rows');
    a.add({ runner: 'a', i: 1 }, { i: 1 });
    b.add({ runner: 'b', i: 1 }, { i: 1 }); // b has not read the file since a wrote it
    b.add({ runner: 'b', i: 2 }, { i: 2 });
    expect(a.all()).toEqual([{ runner: 'a', i: 1 }, { runner: 'b', i: 2 }]);
  });

  it('refuses a file that is not an array of rows', () => {
    const dir = mkdtempSync(join(tmpdir(), 'enorm-store-'));
    writeFileSync(join(dir, 'rows.json'), '{"a": 1}');
    expect(() => new ResultFile<R>(dir, 'rows')).toThrow('is not a JSON array');
  });

  it('loses no row when processes add to one file at once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'enorm-store-'));
    const script = `import { ResultFile } from ${JSON.stringify(join(process.cwd(), 'bench/experiments/store.ts'))};
      const f = new ResultFile(process.argv[2], 'rows');
      while (Date.now() < Number(process.argv[4])); // all writers start together
      for (let i = 0; i < 150; i++) f.add({ runner: process.argv[3], i });`;
    const file = join(dir, 'writer.mts');
    writeFileSync(file, script);
    const start = String(Date.now() + 4000); // after tsx has started all three
    await Promise.all(['p', 'q', 'r'].map((name) => run('npx', ['tsx', file, dir, name, start])));
    const rows = JSON.parse(readFileSync(join(dir, 'rows.json'), 'utf8')) as R[];
    expect(rows).toHaveLength(450);
    for (const name of ['p', 'q', 'r']) expect(rows.filter((r) => r.runner === name).map((r) => r.i)).toEqual([...Array(150).keys()]);
  }, 60_000);
});

describe('bestLr', () => {
  it('picks the best validation accuracy, ties to the earlier lr, and names an incomplete search', () => {
    const dir = mkdtempSync(join(tmpdir(), 'enorm-store-'));
    const search = new ResultFile<{ method: string; lr: number; valAccuracy: number }>(dir, 'search');
    search.add({ method: 'm', lr: 0.1, valAccuracy: 0.8 });
    search.add({ method: 'm', lr: 0.3, valAccuracy: 0.9 });
    search.add({ method: 'm', lr: 1, valAccuracy: 0.9 });
    expect(bestLr(search, { method: 'm' }, [0.1, 0.3, 1], 'm')).toBe(0.3);
    expect(() => bestLr(search, { method: 'm' }, [0.1, 0.3, 3], 'm at depth 14')).toThrow('m at depth 14: the lr search is incomplete');
  });
});
