/** The byte codec of a tfjs model: the weights manifest and binary shards <-> typed arrays. */
import { clean, describe, fail, isObject, product, quote, shapeText } from '../shared.js';

/** Weight dtypes of the tfjs weights manifest. */
export type TfjsDtype = 'float32' | 'int32' | 'bool' | 'complex64' | 'string';

export interface TfjsWeight {
  /** Manifest name, e.g. 'dense_1/kernel'. */
  name: string;
  shape: number[];
  dtype: TfjsDtype;
  /**
   * float32: the live values (the same object the network's layers hold);
   * int32: an Int32Array; bool, complex64, string: the raw bytes, written back unchanged.
   */
  data: Float32Array | Int32Array | Uint8Array;
  /** The manifest entry's `group`, kept as read. */
  group?: string;
}

/** Bytes per element; a Map, so that a dtype such as 'constructor' finds nothing. */
export const DTYPE_BYTES: ReadonlyMap<TfjsDtype, number> = new Map([['float32', 4], ['int32', 4], ['bool', 1], ['complex64', 8]]);

export function dtypeBytes(dtype: Exclude<TfjsDtype, 'string'>): number {
  return DTYPE_BYTES.get(dtype) as number;
}

interface ManifestEntry { name: string; shape: number[]; dtype: TfjsDtype; group?: string }
export interface ManifestGroup { paths: string[]; entries: ManifestEntry[] }

export function readManifest(src: string, manifest: unknown): ManifestGroup[] {
  if (!Array.isArray(manifest)) fail('E_MODEL', `${src}: 'weightsManifest' must be an array of weight groups`);
  const seen = new Set<string>();
  return manifest.map((group: unknown, g) => {
    if (!isObject(group) || !Array.isArray(group.paths) || !Array.isArray(group.weights)) {
      fail('E_MODEL', `${src}: weightsManifest[${g}] needs 'paths' and 'weights' arrays`);
    }
    const paths = group.paths.map((p: unknown, i) => {
      if (typeof p !== 'string' || p === '') fail('E_MODEL', `${src}: weightsManifest[${g}].paths[${i}] is not a file name`);
      return p;
    });
    if (paths.length === 0 && group.weights.length > 0) fail('E_MODEL', `${src}: weightsManifest[${g}] lists weights but no shard files`);
    const entries = group.weights.map((w: unknown, i): ManifestEntry => {
      if (!isObject(w) || typeof w.name !== 'string' || w.name === '') {
        fail('E_MODEL', `${src}: weightsManifest[${g}].weights[${i}] has no name`);
      }
      const name = w.name;
      if (w.quantization !== undefined && w.quantization !== null) {
        const q = isObject(w.quantization) && typeof w.quantization.dtype === 'string' ? ` (${clean(w.quantization.dtype)})` : '';
        fail('E_MODEL', `${src}: weight ${quote(name)} is quantized${q}, which enorm does not support; export the model without weight quantization`);
      }
      if (!Array.isArray(w.shape) || !w.shape.every((d: unknown) => Number.isInteger(d) && (d as number) >= 0)) {
        fail('E_MODEL', `${src}: weight ${quote(name)} has a malformed shape ${describe(w.shape)}`);
      }
      if (typeof w.dtype !== 'string' || !(DTYPE_BYTES.has(w.dtype as TfjsDtype) || w.dtype === 'string')) {
        fail('E_MODEL', `${src}: weight ${quote(name)} has unsupported dtype ${describe(w.dtype)}`);
      }
      if (seen.has(name)) fail('E_MODEL', `${src}: weight ${quote(name)} appears twice in the weights manifest`);
      seen.add(name);
      const entry: ManifestEntry = { name, shape: [...(w.shape as number[])], dtype: w.dtype as TfjsDtype };
      if (typeof w.group === 'string') entry.group = w.group;
      return entry;
    });
    return { paths, entries };
  });
}

function toBytes(b: unknown, what: string, src: string): Uint8Array {
  if (b instanceof ArrayBuffer) return new Uint8Array(b);
  if (ArrayBuffer.isView(b)) return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  return fail('E_MODEL', `${src}: ${what} is not an ArrayBuffer`);
}

function concatBytes(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  let total = 0;
  for (const p of parts) total += p.byteLength;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/** Bytes the entry occupies at `offset`; string tensors are length-prefixed, so they are walked. */
function entryBytes(entry: ManifestEntry, bytes: Uint8Array, offset: number): number {
  const n = product(entry.shape);
  if (entry.dtype !== 'string') return n * dtypeBytes(entry.dtype);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = offset;
  // Every element takes at least its 4-byte length, so this loop ends within the data.
  for (let i = 0; i < n; i++) {
    if (at + 4 > bytes.byteLength) return at + 4 - offset; // truncated: report what at least is needed
    at += 4 + view.getUint32(at, true);
  }
  return at - offset;
}

function shardLabel(paths: string[]): string {
  if (paths.length === 1) return `shard ${quote(paths[0])}`;
  const shown = paths.slice(0, 4).map((p) => quote(p)).join(' + ');
  return `shards ${shown}${paths.length > 4 ? ` + ... (${paths.length} files)` : ''}`;
}

export function decodeWeights(src: string, groups: ManifestGroup[], weightData: ArrayBuffer | ArrayBuffer[]): TfjsWeight[] {
  const allPaths = groups.flatMap((g) => g.paths);
  let segments: { paths: string[]; entries: ManifestEntry[]; bytes: Uint8Array }[];
  if (Array.isArray(weightData)) {
    if (weightData.length !== allPaths.length) {
      fail('E_MODEL', `${src}: the weights manifest lists ${allPaths.length} shard file(s), got ${weightData.length} buffer(s)`);
    }
    let k = 0;
    segments = groups.map((g) => ({
      paths: g.paths,
      entries: g.entries,
      bytes: concatBytes(g.paths.map((p) => toBytes(weightData[k++], `the data of shard ${quote(p)}`, src))),
    }));
  } else {
    segments = [{ paths: allPaths, entries: groups.flatMap((g) => g.entries), bytes: toBytes(weightData, 'the weight data', src) }];
  }

  const weights: TfjsWeight[] = [];
  for (const seg of segments) {
    let offset = 0;
    const found = seg.bytes.byteLength;
    const slices: { entry: ManifestEntry; start: number; end: number }[] = [];
    for (const entry of seg.entries) {
      const size = entryBytes(entry, seg.bytes, offset);
      slices.push({ entry, start: offset, end: offset + size });
      offset += size;
    }
    if (offset !== found) {
      const how = offset > found ? 'is truncated' : 'is longer than its manifest says';
      fail('E_MODEL', `${src}: ${shardLabel(seg.paths)} ${how}: expected ${offset} bytes, found ${found}`);
    }
    for (const { entry, start, end } of slices) {
      // slice() copies into a fresh, aligned buffer: no two tensors share memory.
      const own = seg.bytes.slice(start, end);
      const data = entry.dtype === 'float32' ? new Float32Array(own.buffer)
        : entry.dtype === 'int32' ? new Int32Array(own.buffer)
          : own;
      const w: TfjsWeight = { name: entry.name, shape: entry.shape, dtype: entry.dtype, data };
      if (entry.group !== undefined) w.group = entry.group;
      weights.push(w);
    }
  }
  return weights;
}

/**
 * All weights in manifest order as one shard: float32 with their current values, the others byte
 * for byte as read. Each weight's byteLength must be product(shape) x bytes of its dtype.
 */
export function encodeWeights(weights: readonly TfjsWeight[]): ArrayBuffer {
  let total = 0;
  for (const w of weights) {
    if (w.dtype !== 'string') {
      const need = product(w.shape) * dtypeBytes(w.dtype);
      if (w.data.byteLength !== need) {
        fail('E_MODEL', `weight ${quote(w.name)} holds ${w.data.byteLength} bytes, its shape ${shapeText(w.shape)} (${clean(w.dtype)}) needs ${need}`);
      }
    }
    total += w.data.byteLength;
  }
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const w of weights) {
    bytes.set(new Uint8Array(w.data.buffer, w.data.byteOffset, w.data.byteLength), at);
    at += w.data.byteLength;
  }
  return bytes.buffer;
}
