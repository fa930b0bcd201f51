/**
 * Runs an ONNX model in onnxruntime-web with explicit feeds (every graph input, any type) and
 * returns every output, for models the CLI's one-input runner does not fit (Silero VAD: audio,
 * recurrent state and an int64 sample rate).
 */
import type * as OrtTypes from 'onnxruntime-web';
import { mulberry32 } from '../../src/network/random.js';

type Ort = typeof OrtTypes;
export type Feed = { type: 'float32'; dims: number[]; data: Float32Array } | { type: 'int64'; dims: number[]; data: BigInt64Array };

async function ort(): Promise<Ort> {
  const o = (await import('onnxruntime-web')) as Ort;
  o.env.wasm.numThreads = 1;
  return o;
}

/** Uniform floats in [-1, 1) of shape `dims`, from `seed`. */
export function randomFeed(dims: number[], seed: number): Feed {
  const rnd = mulberry32(seed);
  return { type: 'float32', dims, data: Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => rnd() * 2 - 1) };
}

/** Every output of the model `bytes` on `feeds`, by name, as float32. */
export async function runFeeds(bytes: Uint8Array, feeds: Record<string, Feed>): Promise<Map<string, Float32Array>> {
  const o = await ort();
  const session = await o.InferenceSession.create(bytes, { logSeverityLevel: 3 });
  const tensors = Object.fromEntries(Object.entries(feeds).map(([name, f]) => [name, new o.Tensor(f.type, f.data, f.dims)]));
  const out = await session.run(tensors);
  return new Map(session.outputNames.map((name) => [name, Float32Array.from(out[name].data as Float32Array)]));
}
