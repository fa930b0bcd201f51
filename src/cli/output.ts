/** How the CLI prints failures: one sanitized line, or one JSON object (--json). */
import { clean, oneLine } from '../model-io/text.js';

/** `enorm: <message>` on one printable line of at most about 500 characters (file names and layer names can hold anything). */
export function errorLine(message: string): string {
  return `enorm: ${oneLine(message, 480)}\n`;
}

/** Commander's own usage error text (it echoes argument values), sanitized, one line. */
export function usageLine(text: string): string {
  return `${oneLine(text.trim())}\n`;
}

/** {"error": {"code", "message", "details"}} plus a newline; details keep their numbers and cleaned strings. */
export function errorJson(code: string, message: string, details: object): string {
  const safe: Record<string, string | number | boolean> = {};
  for (const [key, value] of Object.entries(details)) {
    if (typeof value === 'string') safe[key] = clean(value);
    else if (typeof value === 'number' || typeof value === 'boolean') safe[key] = value;
  }
  return `${JSON.stringify({ error: { code, message: oneLine(message), details: safe } })}\n`;
}
