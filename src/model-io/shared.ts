/**
 * Helpers every model format shares: the one error constructor of the readers, the JSON object
 * test, and the shape arithmetic and text their messages use. Text from the file goes through
 * text.ts (describe/quote/clean), re-exported here so a format imports one module.
 */
import { ENormError, type ENormErrorCode } from '../errors.js';

export { clean, describe, quote } from './text.js';

export type Json = Record<string, unknown>;

/** A plain JSON object (not null, not an array). */
export function isObject(v: unknown): v is Json {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Throws the reader's ENormError, naming the layer in `details` when given. */
export function fail(code: ENormErrorCode, message: string, layer?: string): never {
  throw new ENormError(code, message, layer === undefined ? {} : { layer });
}

/** '[2, ?, 3]': null (an open dimension) prints as '?'. */
export function shapeText(shape: readonly (number | null)[]): string {
  return `[${shape.map((d) => (d === null ? '?' : d)).join(', ')}]`;
}

/** Element count of a shape: the product of its dimensions (1 for a scalar). */
export function product(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
