/**
 * Result files: a JSON array of rows per experiment under the results directory, rewritten
 * atomically (temp file + rename) after every row, so an interrupted sweep resumes where it stopped.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export type Row = Record<string, string | number | boolean | null>;

export class ResultFile<R extends Row> {
  readonly path: string;
  private rows: R[];

  constructor(dir: string, name: string) {
    this.path = join(dir, `${name}.json`);
    this.rows = existsSync(this.path) ? (JSON.parse(readFileSync(this.path, 'utf8')) as R[]) : [];
    if (!Array.isArray(this.rows)) throw new Error(`${this.path} is not a JSON array of result rows`);
  }

  /** The row whose fields include all of `key`'s, if any. */
  find(key: Partial<R>): R | undefined {
    return this.rows.find((r) => Object.entries(key).every(([k, v]) => r[k] === v));
  }

  all(): readonly R[] {
    return this.rows;
  }

  add(row: R): void {
    this.rows.push(row);
    mkdirSync(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(this.rows, null, 1)}\n`);
    renameSync(tmp, this.path);
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
