/**
 * NumPy .npy files of little-endian float32 in C order (format versions 1.0, 2.0 and 3.0), read
 * from untrusted bytes: the magic, the header length, the header dict (a small Python-literal
 * parser, never eval), its keys, the shape and the data length are all checked.
 *
 * Layout: "\x93NUMPY", major, minor, header length (uint16 LE in 1.0, uint32 LE in 2.0/3.0), the
 * header (ASCII; UTF-8 in 3.0) "{'descr': '<f4', 'fortran_order': False, 'shape': (64, 784), }"
 * padded with spaces and a newline, then product(shape) * 4 bytes of data, nothing after.
 */
import { CliFailure } from './failure.js';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
/** numpy itself refuses headers over 10,000 bytes by default; a shape of 8 dims needs far less. */
const MAX_HEADER = 10_000;
const MAX_RANK = 8;

export interface NpyArray {
  shape: number[];
  data: Float32Array;
}

type PyValue = string | number | boolean | PyValue[];

const bad = (what: string, message: string): never => { throw new CliFailure('E_OPTION', `${what}: not a float32 .npy file: ${message}`); };

/** Parses the .npy bytes; `what` (the file name) starts every message. */
export function parseNpy(bytes: Uint8Array, what: string): NpyArray {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) bad(what, 'it does not start with the magic "\\x93NUMPY"');
  const major = bytes[6];
  if (major < 1 || major > 3 || bytes[7] !== 0) bad(what, `format version ${major}.${bytes[7]} is not 1.0, 2.0 or 3.0`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lengthBytes = major === 1 ? 2 : 4;
  if (bytes.length < 8 + lengthBytes) bad(what, 'the file ends inside the header length');
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = 8 + lengthBytes;
  if (headerLength > MAX_HEADER) bad(what, `the header is ${headerLength} bytes, over the limit of ${MAX_HEADER}`);
  if (start + headerLength > bytes.length) bad(what, `the header (${headerLength} bytes) runs past the end of the file (${bytes.length} bytes)`);
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(start, start + headerLength));
  const shape = headerShape(header, what);
  const count = shape.reduce((a, b) => a * b, 1);
  const dataStart = start + headerLength;
  const expected = count * 4;
  if (!Number.isSafeInteger(expected) || bytes.length - dataStart !== expected) {
    bad(what, `shape (${shape.join(', ')}) needs ${expected} bytes of float32 data, the file has ${bytes.length - dataStart} after the header`);
  }
  const data = new Float32Array(count);
  for (let i = 0; i < count; i++) data[i] = view.getFloat32(dataStart + 4 * i, true);
  return { shape, data };
}

/** The shape from the header dict, after checking descr '<f4' and fortran_order False. */
function headerShape(header: string, what: string): number[] {
  const dict = new PyLiteral(header, what).dict();
  const keys = Object.keys(dict).sort().join(', ');
  if (keys !== 'descr, fortran_order, shape') bad(what, `the header has the keys {${keys.slice(0, 100)}}, not exactly descr, fortran_order and shape`);
  const { descr, fortran_order: fortran, shape } = dict;
  if (descr !== '<f4') bad(what, `dtype ${JSON.stringify(descr).slice(0, 40)} is not '<f4' (little-endian float32): save with x.astype('<f4')`);
  if (fortran !== false) bad(what, "the array is in Fortran order: save a C-ordered array (np.ascontiguousarray)");
  if (!Array.isArray(shape) || shape.length > MAX_RANK || !shape.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
    bad(what, `the shape must be a tuple of at most ${MAX_RANK} whole numbers >= 0`);
  }
  return shape as number[];
}

/**
 * The subset of Python literals a .npy header uses: a dict with string keys, strings in single or
 * double quotes (no escapes), True / False, whole numbers, tuples; trailing commas allowed, and
 * only spaces and a final newline around it.
 */
class PyLiteral {
  private at = 0;
  constructor(private readonly text: string, private readonly what: string) {}

  dict(): Record<string, PyValue> {
    this.expect('{');
    const out: Record<string, PyValue> = Object.create(null);
    while (!this.eat('}')) {
      const key = this.value();
      if (typeof key !== 'string') this.fail('a dict key is not a string');
      if (Object.prototype.hasOwnProperty.call(out, key as string)) this.fail(`the key ${JSON.stringify(key).slice(0, 40)} appears twice`);
      this.expect(':');
      out[key as string] = this.value();
      if (!this.eat(',')) { this.expect('}'); break; }
    }
    this.space();
    if (this.at !== this.text.length) this.fail('text after the dict');
    return out;
  }

  private value(depth = 0): PyValue {
    this.space();
    const c = this.text[this.at];
    if (c === "'" || c === '"') {
      const end = this.text.indexOf(c, this.at + 1);
      if (end < 0) this.fail('an unterminated string');
      const s = this.text.slice(this.at + 1, end);
      if (s.includes('\\') || s.includes('\n')) this.fail('escapes in strings are not supported');
      this.at = end + 1;
      return s;
    }
    if (c === '(') {
      if (depth > 0) this.fail('nested tuples');
      this.at++;
      const items: PyValue[] = [];
      while (!this.eat(')')) {
        if (items.length >= MAX_RANK) this.fail(`a tuple longer than ${MAX_RANK}`);
        items.push(this.value(depth + 1));
        if (!this.eat(',')) { this.expect(')'); break; }
      }
      return items;
    }
    const word = /^(True|False|\d{1,16})/.exec(this.text.slice(this.at, this.at + 17));
    if (!word) this.fail(`unexpected ${JSON.stringify(this.text.slice(this.at, this.at + 10))}`);
    this.at += word![0].length;
    if (/^\d/.test(this.text.slice(this.at, this.at + 1))) this.fail('a number with more than 16 digits');
    return word![0] === 'True' ? true : word![0] === 'False' ? false : Number(word![0]);
  }

  private space(): void {
    while (this.text[this.at] === ' ' || this.text[this.at] === '\n') this.at++;
  }
  private eat(c: string): boolean {
    this.space();
    if (this.text[this.at] !== c) return false;
    this.at++;
    return true;
  }
  private expect(c: string): void {
    if (!this.eat(c)) this.fail(`expected '${c}' at header character ${this.at}`);
  }
  private fail(message: string): never {
    return bad(this.what, `bad header dict: ${message}`);
  }
}

/** A version 1.0 .npy file of float32 `data` in C order (numpy.load reads it), header padded to 64 bytes. */
export function encodeNpy(data: Float32Array, shape: readonly number[]): Uint8Array {
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(', ');
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${dims}), }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n'; // 10 + header length is a multiple of 64
  const out = new Uint8Array(10 + header.length + data.length * 4);
  out.set(MAGIC);
  out[6] = 1;
  out[7] = 0;
  const view = new DataView(out.buffer);
  view.setUint16(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  data.forEach((v, i) => view.setFloat32(10 + header.length + 4 * i, v, true));
  return out;
}
