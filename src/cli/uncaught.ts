/** What bin.ts does with an error that escaped main(): expected failures stay one line (exit 1); bugs show everything (exit 70). */
import { isENormError } from '../errors.js';
import { CliFailure } from './failure.js';
import { errorLine } from './output.js';

export const INTERNAL_ERROR_EXIT = 70;

/** Writes the report for `e` through `write` and returns the exit code. */
export function reportUncaught(e: unknown, write: (text: string) => void): number {
  if (isENormError(e) || e instanceof CliFailure) {
    write(errorLine(e.message));
    return 1;
  }
  const detail = e instanceof Error ? (e.stack ?? `${e.name}: ${e.message}`) : String(e);
  write(`enorm: internal error, please report it: ${detail}\n`);
  return INTERNAL_ERROR_EXIT;
}
