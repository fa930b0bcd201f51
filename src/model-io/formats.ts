/**
 * The model formats the CLI reads and writes. formatFor picks the first whose detect() accepts the
 * path; a path no format claims goes to the first entry, whose reader then says what is wrong with
 * it (so `enorm balance notes.txt` reports tfjs's "not valid JSON", as before the registry).
 */
import type { ModelFormat } from './format.js';
import { onnxFormat } from './onnx/format.js';
import { tfjsFormat } from './tfjs/format.js';

export const FORMATS: readonly ModelFormat[] = [
  tfjsFormat as ModelFormat,
  onnxFormat as ModelFormat,
];

export function formatFor(path: string, head?: Uint8Array): ModelFormat {
  return FORMATS.find((f) => f.detect(path, head)) ?? FORMATS[0];
}
