/**
 * A faster Tile for tfjs-backend-wasm. tfjs 4.22's wasm kernel computes every output element's source
 * index on its own, about 9 ms to tile a 500-vector 256 times (128,000 floats) on this project's
 * machine, and BatchNormalization's gradient tiles its 1/sqrt(var + eps) to the batch once per layer:
 * 15 tiles were 129 ms of a 507 ms step of the width-500 k = 14 BN net. Tiling only moves values, so
 * this kernel copies whole source rows (the last axis) into the output with `TypedArray.set` and
 * `copyWithin`: the result is the same, bit for bit (the test compares the two).
 */
import * as tf from '@tensorflow/tfjs';
import { KernelSwap } from './kernel-swap.js';

const swap = new KernelSwap('Tile', 'wasm');

type TypedArray = Float32Array | Int32Array | Uint8Array;
interface WasmBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): TypedArray;
}
type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

/**
 * Writes x (row-major, `shape`) tiled `reps` times along each axis into out. Output rows (all axes
 * but the last) are visited in order with an odometer; the source row of output index (i_0 .. i_{n-2})
 * is (i_0 mod d_0, .., i_{n-2} mod d_{n-2}), copied reps[n-1] times.
 */
export function tileInto(x: TypedArray, shape: readonly number[], reps: readonly number[], out: TypedArray): void {
  const n = shape.length;
  if (n === 0) {
    if (out.length) out[0] = x[0];
    return;
  }
  if (out.length === 0) return;
  const inner = shape[n - 1];
  const times = reps[n - 1];
  const strides = new Array<number>(n).fill(1); // source strides, in elements
  for (let a = n - 2; a >= 0; a--) strides[a] = strides[a + 1] * shape[a + 1];
  const outer = shape.slice(0, n - 1).map((d, a) => d * reps[a]);
  const index = new Array<number>(n - 1).fill(0); // output index over the outer axes
  const source = new Array<number>(n - 1).fill(0); // the same index mod shape
  let offset = 0; // source row offset: sum of source[a] * strides[a]
  const rows = outer.reduce((p, d) => p * d, 1);
  let at = 0;
  for (let r = 0; r < rows; r++) {
    // One copy of the row, then doubling within the output: log2(times) block copies. set and
    // copyWithin move the stored bits (NaN payloads included), unlike reads into JS numbers.
    out.set(x.subarray(offset, offset + inner), at);
    for (let done = 1; done < times; done *= 2) out.copyWithin(at + done * inner, at, at + Math.min(done, times - done) * inner);
    at += times * inner;
    for (let a = n - 2; a >= 0; a--) {
      index[a]++;
      offset += strides[a];
      if (++source[a] === shape[a]) {
        source[a] = 0;
        offset -= shape[a] * strides[a];
      }
      if (index[a] < outer[a]) break;
      index[a] = 0;
      source[a] = 0;
      // (offset already wrapped: index reached a multiple of shape[a], so source[a] is 0 again)
    }
  }
}

function tile(args: KernelArgs): tf.TensorInfo {
  const x = args.inputs.x!;
  const reps = (args.attrs as unknown as { reps: number[] }).reps;
  if (x.dtype === 'string' || x.dtype === 'complex64') return (swap.tfjs.kernelFunc as unknown as (a: KernelArgs) => tf.TensorInfo)(args);
  const backend = args.backend as WasmBackend;
  const out = backend.makeOutput(x.shape.map((d, a) => d * reps[a]), x.dtype);
  // makeOutput may grow the wasm heap: take the input's view after it.
  tileInto(backend.typedArrayFromHeap(x), x.shape, reps, backend.typedArrayFromHeap(out));
  return out;
}

/** Replaces the wasm backend's Tile; idempotent. Import '@tensorflow/tfjs-backend-wasm' first. */
export function useFastTile(): void {
  swap.install(tile as unknown as tf.KernelFunc);
}

/** Puts tfjs's own kernel back (for tests and benchmarks that compare the two). */
export function restoreTile(): void {
  swap.restore();
}
