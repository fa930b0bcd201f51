/**
 * Result files: a JSON array of rows per experiment under the results directory, rewritten
 * atomically (temp file + rename) after every row, so an interrupted sweep resumes where it stopped.
 * Several runners may share a file: reads pick up rows other runners wrote (the file is re-read when
 * its size or mtime changed), and add() re-reads and rewrites it under a lock file (./claims.ts).
 */
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { withLock } from './claims.js';

export type Row = Record<string, string | number | boolean | null>;

export class ResultFile<R extends Row> {
  readonly path: string;
  private rows: R[] = [];
  /** size:mtime of the file when last read, '' when it did not exist. */
  private seen = '';

  constructor(dir: string, name: string) {
    this.path = join(dir, `${name}.json`);
    this.sync();
  }

  private stamp(): string {
    if (!existsSync(this.path)) return '';
    const s = statSync(this.path);
    return `${s.size}:${s.mtimeMs}`;
  }

  /** Re-reads the file if it changed since it was last read. */
  private sync(): void {
    const stamp = this.stamp();
    if (stamp === this.seen) return;
    const rows = stamp ? (JSON.parse(readFileSync(this.path, 'utf8')) as R[]) : [];
    if (!Array.isArray(rows)) throw new Error(`${this.path} is not a JSON array of result rows`);
    this.rows = rows;
    this.seen = stamp;
  }

  /** The row whose fields include all of `key`'s, if any. */
  find(key: Partial<R>): R | undefined {
    this.sync();
    return this.rows.find((r) => Object.entries(key).every(([k, v]) => r[k] === v));
  }

  all(): readonly R[] {
    this.sync();
    return this.rows;
  }

  /**
   * Appends a row to the rows on disk now (another runner's included). With `key`, a row matching it
   * that is already there wins and nothing is added: each cell is recorded once.
   */
  add(row: R, key?: Partial<R>): void {
    mkdirSync(dirname(this.path), { recursive: true });
    withLock(`${this.path}.lock`, () => {
      this.seen = '#'; // always re-read under the lock: another runner's rewrite may have kept the size and a coarse mtime
      this.sync();
      if (key && this.find(key)) return;
      this.rows.push(row);
      const tmp = `${this.path}.${process.pid}.tmp`;
      writeFileSync(tmp, `${JSON.stringify(this.rows, null, 1)}\n`);
      renameSync(tmp, this.path);
      this.seen = this.stamp();
    });
  }
}

/**
 * The lr of `grid` whose search row (the rows matching `key` plus that lr) has the best validation
 * accuracy; ties go to the earlier lr. Throws when a row is missing.
 */
export function bestLr<R extends Row & { lr: number; valAccuracy: number }>(search: ResultFile<R>, key: Partial<R>, grid: number[], what: string): number {
  const rows = grid.map((lr) => search.find({ ...key, lr } as Partial<R>));
  if (rows.some((r) => !r)) throw new Error(`${what}: the lr search is incomplete`);
  return rows.reduce((best, r) => (r!.valAccuracy > best!.valAccuracy ? r : best))!.lr;
}
