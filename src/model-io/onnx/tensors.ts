/**
 * ONNX tensor payloads: where a tensor's elements are (raw_data, float_data, an external file),
 * decoding them to float32 (fp16 widened exactly), and writing float32 values back into the same
 * bytes (fp16 rounded to nearest, ties to even). Element counts are checked against the bytes
 * present before anything is allocated.
 */
import { ENormError } from '../../errors.js';
import { quote } from '../text.js';
import { DataType, EXTERNAL } from './schema.js';
import type { Run, WireTensor } from './wire.js';

/** Where a float tensor's elements lie: runs of `width`-byte little-endian elements in `file` (undefined: the model file). */
export interface Payload { file?: string; runs: Run[]; width: 2 | 4; count: number }

export const FLOAT_TYPES: ReadonlySet<number> = new Set([DataType.FLOAT, DataType.FLOAT16]);

const who = (t: WireTensor) => `ONNX tensor ${quote(t.name)}`;

/** The element count of `dims`, refusing negative, fractional or unsafe dimensions. */
export function elementCount(t: WireTensor): number {
  let n = 1;
  for (const d of t.dims) {
    if (!Number.isSafeInteger(d) || d < 0) throw new ENormError('E_MODEL', `${who(t)}: dimension ${d} is not a non-negative whole number`);
    n *= d;
    if (!Number.isSafeInteger(n)) throw new ENormError('E_MODEL', `${who(t)}: its dimensions multiply past 2^53`);
  }
  return n;
}

/** An external tensor's file, offset and length (ONNX external_data keys). */
export function externalRef(t: WireTensor): { location: string; offset: number; length?: number } | undefined {
  if (t.dataLocation !== EXTERNAL) return undefined;
  const location = t.external.get('location');
  if (location === undefined || location === '') throw new ENormError('E_MODEL', `${who(t)}: external data without a 'location'`);
  const num = (key: string): number | undefined => {
    const v = t.external.get(key);
    if (v === undefined) return undefined;
    if (!/^\d{1,16}$/.test(v) || !Number.isSafeInteger(Number(v))) throw new ENormError('E_MODEL', `${who(t)}: external '${key}' ${quote(v, 30)} is not a byte count`);
    return Number(v);
  };
  return { location, offset: num('offset') ?? 0, length: num('length') };
}

/**
 * Where the elements of float tensor `t` are, checked against the bytes present (`fileSize(name)`
 * for external files): raw_data or external data of exactly count x width bytes, or float_data of
 * exactly count floats. Undefined: the values are stored in a form the writer cannot patch in place
 * (fp16 in int32_data); `reason` then says so.
 */
export function locate(t: WireTensor, fileSize: (location: string) => number | undefined): Payload | { reason: string } {
  const count = elementCount(t);
  const width = t.dataType === DataType.FLOAT16 ? 2 : 4;
  const ext = externalRef(t);
  if (ext) {
    const size = fileSize(ext.location);
    if (size === undefined) throw new ENormError('E_MODEL', `${who(t)}: external file ${quote(ext.location)} was not supplied`);
    const length = ext.length ?? size - ext.offset;
    if (length !== count * width || ext.offset + length > size) {
      throw new ENormError('E_MODEL', `${who(t)}: external data of ${length} bytes at offset ${ext.offset} does not hold ${count} elements of ${width} bytes in a file of ${size} bytes`);
    }
    return { file: ext.location, runs: [{ start: ext.offset, count }], width, count };
  }
  if (t.raw) {
    if (t.raw.length !== count * width) throw new ENormError('E_MODEL', `${who(t)}: raw_data has ${t.raw.length} bytes for ${count} elements of ${width} bytes`);
    return { runs: [{ start: t.raw.start, count }], width, count };
  }
  if (width === 2) {
    if (t.int32Data.length !== count) throw new ENormError('E_MODEL', `${who(t)}: ${t.int32Data.length} values in int32_data for ${count} elements`);
    return { reason: `fp16 tensor ${quote(t.name)} is stored in int32_data (varints), which cannot be rewritten in place` };
  }
  const stored = t.floatRuns.reduce((a, run) => a + run.count, 0);
  if (stored !== count) throw new ENormError('E_MODEL', `${who(t)}: ${stored} values in float_data for ${count} elements`);
  return { runs: t.floatRuns, width, count };
}

// fp16 <-> f32, exact widening and round-to-nearest-even narrowing.
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

export function floatToHalf(x: number): number {
  f32[0] = x;
  const bits = u32[0];
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // below half the smallest subnormal: zero
    const m = mant | 0x800000;
    const shift = 14 - e;
    const half = m >>> shift;
    const rest = m & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    return sign | (half + (rest > mid || (rest === mid && (half & 1)) ? 1 : 0));
  }
  const half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  // A carry out of the mantissa moves to the next exponent (and to Infinity), as it should.
  return sign | (half + (rest > 0x1000 || (rest === 0x1000 && (half & 1)) ? 1 : 0));
}

/** x rounded to the nearest fp16 value, as a number. */
export const roundToHalf = (x: number): number => halfToFloat(floatToHalf(x));

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The payload's elements as float32 (a fresh, aligned array). */
export function readPayload(bytes: Uint8Array, p: Payload): Float32Array {
  const out = new Float32Array(p.count);
  const v = view(bytes);
  let k = 0;
  for (const run of p.runs) {
    for (let i = 0; i < run.count; i++, k++) {
      const at = run.start + i * p.width;
      out[k] = p.width === 4 ? v.getFloat32(at, true) : halfToFloat(v.getUint16(at, true));
    }
  }
  return out;
}

/** The elements of a tensor that is not a patchable payload: fp16 int32_data, or int64 / int32 / float values. */
export function readValues(bytes: Uint8Array, t: WireTensor): number[] | undefined {
  if (t.dataLocation === EXTERNAL) return undefined;
  const count = elementCount(t);
  const raw = t.raw;
  const v = view(bytes);
  switch (t.dataType) {
    case DataType.INT64:
      if (!raw) return t.int64Data.length === count ? t.int64Data : undefined;
      if (raw.length !== count * 8) return undefined;
      return Array.from({ length: count }, (_, i) => Number(v.getBigInt64(raw.start + 8 * i, true)));
    case DataType.INT32:
      if (!raw) return t.int32Data.length === count ? t.int32Data : undefined;
      if (raw.length !== count * 4) return undefined;
      return Array.from({ length: count }, (_, i) => v.getInt32(raw.start + 4 * i, true));
    case DataType.FLOAT16:
      if (!raw && t.int32Data.length === count) return t.int32Data.map(halfToFloat);
      break;
  }
  const p = FLOAT_TYPES.has(t.dataType) ? locate(t, () => undefined) : undefined;
  return p && 'runs' in p ? Array.from(readPayload(bytes, p)) : undefined;
}

/**
 * Writes `data` into the payload's bytes of `bytes` (f32 as is; fp16 rounded to nearest even).
 * A value that is not finite in the stored type (an fp16 overflow past 65504) is refused.
 */
export function writePayload(bytes: Uint8Array, p: Payload, data: Float32Array, name: string): void {
  const v = view(bytes);
  let k = 0;
  for (const run of p.runs) {
    for (let i = 0; i < run.count; i++, k++) {
      const at = run.start + i * p.width;
      if (p.width === 4) {
        v.setFloat32(at, data[k], true);
      } else {
        const h = floatToHalf(data[k]);
        if ((h & 0x7c00) === 0x7c00 && Number.isFinite(data[k])) {
          throw new ENormError('E_OVERFLOW', `ONNX tensor ${quote(name)}: element ${k} (${data[k]}) overflows float16; nothing was written`, { tensor: name, index: k });
        }
        v.setUint16(at, h, true);
      }
    }
  }
}
