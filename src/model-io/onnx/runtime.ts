/**
 * Runs an ONNX model in onnxruntime-web (an optional peer dependency; its Wasm build runs in Node
 * too), for the CLI's output check: the first graph input in, the first output out, float32 at the
 * interface (float16 models are fed and read in float16).
 */
import { ENormError } from '../../errors.js';
import type { ModelRunner } from '../format.js';
import { firstLine } from '../text.js';
import { floatToHalf, halfToFloat } from './tensors.js';

type Ort = typeof import('onnxruntime-web');

export const ORT_MISSING = 'onnxruntime-web is not installed (npm i onnxruntime-web)';

async function loadOrt(): Promise<Ort | undefined> {
  try {
    const name = 'onnxruntime-web'; // a variable, so bundlers leave the optional peer out
    return (await import(name)) as Ort;
  } catch {
    return undefined;
  }
}

function toFloat32(data: unknown): Float32Array {
  if (data instanceof Float32Array) return Float32Array.from(data);
  if (data instanceof Uint16Array) return Float32Array.from(data, halfToFloat);
  return Float32Array.from(data as ArrayLike<number>);
}

/** A runner for the model `bytes` (with its external files by location), or why there is none. */
export async function onnxRunner(bytes: Uint8Array, external: ReadonlyMap<string, Uint8Array> = new Map()): Promise<ModelRunner | { unavailable: string }> {
  const ort = await loadOrt();
  if (!ort) return { unavailable: ORT_MISSING };
  if (typeof process !== 'undefined' && process.versions?.node) ort.env.wasm.numThreads = 1;
  let session: Awaited<ReturnType<Ort['InferenceSession']['create']>>;
  try {
    const externalData = [...external].map(([path, data]) => ({ path, data }));
    // Severity 3 (errors only): onnxruntime's warnings (unused initializers) would flood the CLI's stderr.
    session = await ort.InferenceSession.create(bytes, { logSeverityLevel: 3, ...(externalData.length ? { externalData } : {}) });
  } catch (e) {
    throw new ENormError('E_MODEL', `onnxruntime cannot load the ONNX model: ${firstLine(e, 200)}`);
  }
  const inputName = session.inputNames[0];
  const outputName = session.outputNames[0];
  const meta = session.inputMetadata?.[0] as { type?: string } | undefined;
  const half = meta?.type === 'float16';
  return async (input, batch, shape) => {
    const dims = [batch, ...shape];
    const tensor = half ? new ort.Tensor('float16', Uint16Array.from(input, floatToHalf), dims) : new ort.Tensor('float32', input, dims);
    let out;
    try {
      out = await session.run({ [inputName]: tensor });
    } catch (e) {
      throw new ENormError('E_MODEL', `onnxruntime cannot run the ONNX model: ${firstLine(e, 200)}`);
    }
    return toFloat32(out[outputName].data);
  };
}
