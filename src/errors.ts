/** Machine-readable reason for a rejected network, option or model file. */
export type ENormErrorCode =
  | 'E_OPTION' // c, p, tolerance, maxCycles or another option out of range
  | 'E_LAYER_KIND' // unknown or unsupported layer kind
  | 'E_LAYOUT' // unknown tensor layout
  | 'E_SHAPE' // shape does not match the array length, or is malformed
  | 'E_TYPE' // a tensor is not a Float32Array
  | 'E_WIDTH' // a layer's input width does not match what feeds it
  | 'E_NONFINITE' // NaN or Infinity in a tensor
  | 'E_GRAPH' // unknown input name, missing inputs, bad add/concat
  | 'E_ALIAS' // two tensors share memory
  | 'E_OVERFLOW' // rescaling left a non-finite value; nothing was written back
  | 'E_MEMORY' // the tensors do not fit in the engine's memory (4 GiB for WebAssembly), or it cannot grow
  | 'E_STATE' // the object was used in a state that forbids it (a disposed engine or model)
  | 'E_MODEL'; // a model file is corrupt or unsupported (model-io)

export interface ENormErrorDetails {
  /** Index of the layer in the network description. */
  layerIndex?: number;
  /** Name of the layer (its `name`, or `#index` when unnamed). */
  layer?: string;
  /** Tensor inside the layer: 'weight', 'bias', 'gamma', ... */
  tensor?: string;
  /** Flat index inside the tensor. */
  index?: number;
}

/** A registry symbol, so that errors from another copy of the package (CJS and ESM, enorm/tfjs) are recognised. */
const BRAND = Symbol.for('enorm.ENormError');

/** Every expected failure is an ENormError: a code, and a message that names the layer. */
export class ENormError extends Error {
  readonly code: ENormErrorCode;
  readonly details: ENormErrorDetails;
  constructor(code: ENormErrorCode, message: string, details: ENormErrorDetails = {}) {
    super(message);
    this.name = 'ENormError';
    this.code = code;
    this.details = details;
    Object.defineProperty(this, BRAND, { value: true });
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }
}

/** True for an ENormError from any copy of enorm (ESM, CommonJS, or bundled into enorm/tfjs). */
export function isENormError(e: unknown): e is ENormError {
  return e instanceof ENormError;
}
