/**
 * Text from untrusted model files, made safe for one-line error messages, and a depth guard
 * for untrusted JSON.
 *
 * Every name or value that comes from a file reaches a message through `clean` (src/describe.ts;
 * directly, or via `quote` / `describe`): control, format and binary-marker characters are escaped,
 * so a message stays one printable line, and the length is capped, so a 10 MB name cannot flood a
 * terminal.
 */
import { clean, MAX_SHOWN } from '../describe.js';
import { ENormError } from '../errors.js';

export { clean, MAX_SHOWN } from '../describe.js';

/** A file-supplied name in single quotes, cleaned and cut to `max`: 'dense_1'. */
export function quote(name: string, max = MAX_SHOWN): string {
  return `'${clean(name, max)}'`;
}

/** Every unsafe character of `text` escaped, nothing cut (for paths the user typed). */
export function printable(text: string): string {
  return clean(text, Infinity);
}

/** The first line of an error's message (Node's errors can span lines), cleaned and cut to `max`. */
export function firstLine(e: unknown, max = 300): string {
  return clean((e instanceof Error ? e.message : String(e)).split('\n')[0], max);
}

/** Keeps a whole message to one printable line of at most `max` code units (the last guard before output). */
export function oneLine(message: string, max = 2000): string {
  return clean(message, max);
}

const PREVIEW_DEPTH = 3;
const PREVIEW_ITEMS = 8;
const PREVIEW_CHARS = 60;

/**
 * A short, JSON-like preview of any value for a message: strings in double quotes and cleaned,
 * arrays and objects at most PREVIEW_DEPTH levels and PREVIEW_ITEMS entries deep (the recursion
 * is bounded by that constant, never by the input's nesting), cut to PREVIEW_CHARS.
 */
export function describe(v: unknown): string {
  const s = preview(v, 0);
  return s.length > PREVIEW_CHARS ? `${s.slice(0, PREVIEW_CHARS - 3)}...` : s;
}

function preview(v: unknown, depth: number): string {
  if (typeof v === 'string') return `"${clean(v, PREVIEW_CHARS).replace(/"/g, '\\"')}"`;
  if (typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined) return String(v);
  if (typeof v !== 'object') return typeof v;
  if (Array.isArray(v)) {
    if (depth >= PREVIEW_DEPTH) return v.length ? '[...]' : '[]';
    const items: string[] = [];
    for (let i = 0; i < v.length && i < PREVIEW_ITEMS; i++) items.push(preview(v[i], depth + 1));
    if (v.length > PREVIEW_ITEMS) items.push('...');
    return `[${items.join(',')}]`;
  }
  const keys = Object.keys(v);
  if (depth >= PREVIEW_DEPTH) return keys.length ? '{...}' : '{}';
  const items: string[] = [];
  for (let i = 0; i < keys.length && i < PREVIEW_ITEMS; i++) {
    items.push(`"${clean(keys[i], 20)}":${preview((v as Record<string, unknown>)[keys[i]], depth + 1)}`);
  }
  if (keys.length > PREVIEW_ITEMS) items.push('...');
  return `{${items.join(',')}}`;
}

/** Deepest nesting of arrays and objects a model file may use (tfjs topologies nest about 10 levels). */
export const MAX_JSON_DEPTH = 100;

interface Visit { value: unknown; depth: number; key: string; parent: Visit | undefined }

/**
 * Throws E_MODEL if `json` nests arrays / objects deeper than MAX_JSON_DEPTH, naming the path.
 * Iterative (an explicit stack), so a 100,000-deep file cannot overflow the call stack; every later
 * step that recurses (JSON.stringify on write, previews) then sees bounded nesting.
 */
export function checkJsonDepth(src: string, json: unknown, maxDepth = MAX_JSON_DEPTH): void {
  const stack: Visit[] = [{ value: json, depth: 0, key: '', parent: undefined }];
  while (stack.length > 0) {
    const visit = stack.pop() as Visit;
    const { value, depth } = visit;
    if (value === null || typeof value !== 'object') continue;
    if (depth >= maxDepth) {
      throw new ENormError('E_MODEL', `${src}: ${jsonPath(visit)} nests deeper than ${maxDepth} levels of arrays / objects`);
    }
    if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) stack.push({ value: value[i], depth: depth + 1, key: `[${i}]`, parent: visit });
    } else {
      const keys = Object.keys(value);
      for (let i = keys.length - 1; i >= 0; i--) {
        stack.push({ value: (value as Record<string, unknown>)[keys[i]], depth: depth + 1, key: `.${keys[i]}`, parent: visit });
      }
    }
  }
}

/** The first few keys of the path to `visit`, e.g. 'weightsManifest[0].weights[0].shape[0][0]...'. */
function jsonPath(visit: Visit): string {
  const keys: string[] = [];
  for (let v: Visit | undefined = visit; v?.parent; v = v.parent) keys.push(v.key);
  keys.reverse();
  const shown = keys.slice(0, 8).join('');
  const path = (shown.startsWith('.') ? shown.slice(1) : shown) + (keys.length > 8 ? '...' : '');
  return path === '' ? 'the top-level value' : quote(path);
}
