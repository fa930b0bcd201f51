/**
 * Neutral text helpers for one-line messages (every layer may use them): `clean` makes any text
 * safe to quote, `describeValue` renders a user value.
 */

/** Longest name or value shown in a message, in UTF-16 code units (before escapes). */
export const MAX_SHOWN = 80;

/**
 * Characters escaped as \uXXXX: C0 and C1 controls and DEL; zero-width and bidi marks and
 * overrides (they reorder what a terminal shows); line / paragraph separators; BOM; U+FFFD
 * (what invalid UTF-8 decodes to, so binary shows as escapes); unpaired surrogates.
 */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufffd]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
const SHORT_ESCAPES: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

function escapeChar(ch: string): string {
  return Object.hasOwn(SHORT_ESCAPES, ch) ? SHORT_ESCAPES[ch] : `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

/**
 * `text` with unsafe characters escaped as \uXXXX (\n, \r, \t), cut to `max` code units (never
 * inside a surrogate pair) with '...' and the full length appended. Backslashes are left as they are,
 * so cleaning a message that holds cleaned names again changes nothing (the CLI's last guard).
 */
export function clean(text: string, max = MAX_SHOWN): string {
  let head = text.length > max ? text.slice(0, max) : text;
  // Do not cut a surrogate pair in half.
  if (head.length < text.length && /[\ud800-\udbff]$/.test(head)) head = head.slice(0, -1);
  const safe = head.replace(UNSAFE, escapeChar);
  return head.length < text.length ? `${safe}... (${text.length} characters)` : safe;
}

/** A user value in a one-line message; never throws (Symbols, objects whose toString throws, revoked proxies). */
export function describeValue(v: unknown): string {
  try {
    if (v === null || v === undefined || typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint' || typeof v === 'symbol') return String(v);
    if (typeof v === 'function') return 'a function';
    if (Array.isArray(v)) return `an array of ${v.length}`;
    const s = typeof v === 'string' ? v : Object.prototype.toString.call(v);
    const line = s.replace(/\s+/g, ' ');
    // Whitespace became spaces; what is left unsafe (controls, bidi overrides) is escaped.
    return (line.length > 80 ? `${line.slice(0, 77)}...` : line).replace(UNSAFE, escapeChar);
  } catch {
    return `a ${typeof v}`;
  }
}
