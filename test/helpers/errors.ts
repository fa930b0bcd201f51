import { expect } from 'vitest';
import { ENormError, type ENormErrorCode } from '../../src/errors.js';

/** Awaits `p`, expects a one-line ENormError with `code` whose message matches `pattern`; returns the message. */
export async function rejectsWith(p: Promise<unknown>, code: ENormErrorCode, pattern: RegExp): Promise<string> {
  const e = await p.then(() => undefined, (err: unknown) => err);
  expect(e).toBeInstanceOf(ENormError);
  expect((e as ENormError).code).toBe(code);
  expect((e as ENormError).message).toMatch(pattern);
  expect((e as ENormError).message).not.toContain('\n');
  return (e as ENormError).message;
}

/** Runs `f`, expects it to throw an ENormError, and returns it. */
export function throwsENormError(f: () => unknown): ENormError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ENormError);
    return e as ENormError;
  }
  throw new Error('expected an ENormError');
}
