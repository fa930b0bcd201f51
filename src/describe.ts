/** A user value in a one-line message; never throws (Symbols, objects whose toString throws, revoked proxies). */
export function describeValue(v: unknown): string {
  try {
    if (v === null || v === undefined || typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint' || typeof v === 'symbol') return String(v);
    if (typeof v === 'function') return 'a function';
    if (Array.isArray(v)) return `an array of ${v.length}`;
    const s = typeof v === 'string' ? v : Object.prototype.toString.call(v);
    const line = s.replace(/\s+/g, ' ');
    return line.length > 80 ? `${line.slice(0, 77)}...` : line;
  } catch {
    return `a ${typeof v}`;
  }
}
