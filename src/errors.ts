import { clean } from './describe.js';

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
  | 'E_DEVICE' // the GPU device or the tfjs backend cannot run the cycle (lost device, rejected kernels, missing internals)
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

/** Where in a network description an error is: the layer's index, its display name and kind. */
export interface LayerAt {
  layerIndex: number;
  /**
   * Display name (`name`, or `#index` when unnamed); cleaned of control characters before it is
   * quoted. Absent while the layer's own name is not read yet: the message then says `layer #index`.
   */
  layer?: string;
  kind?: string;
}

/** A layer name fit to quote in a message: unsafe characters escaped, cut to 80 code units (`clean`). */
export function safeName(name: string): string {
  return clean(name);
}

/**
 * The one way to build an error about a layer: "layer 'name' (kind): message" ("layer #index: message"
 * before the name is known), with the layer's index and name (and the tensor and flat index, when
 * given) in `details`. Names are cleaned, so the message stays one printable line.
 */
export function layerError(code: ENormErrorCode, at: LayerAt, message: string, more: Pick<ENormErrorDetails, 'tensor' | 'index'> = {}): ENormError {
  const who = at.layer === undefined ? `#${at.layerIndex}` : `'${safeName(at.layer)}'`;
  const kind = at.kind === undefined ? '' : ` (${safeName(String(at.kind))})`;
  const details: ENormErrorDetails = { layerIndex: at.layerIndex, layer: at.layer ?? `#${at.layerIndex}` };
  if (more.tensor !== undefined) details.tensor = more.tensor;
  if (more.index !== undefined) details.index = more.index;
  return new ENormError(code, `layer ${who}${kind}: ${message}`, details);
}
