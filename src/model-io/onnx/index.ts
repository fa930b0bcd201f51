/**
 * ONNX models to and from enorm networks, in memory, in every runtime (no node: imports).
 *
 * readOnnxModel decodes an untrusted .onnx file (wire.ts), orders its graph (graph.ts) and maps its
 * ops to enorm layers (ops.ts). writeOnnxModel is byte-preserving: the output is a copy of the
 * input in which only the payloads of the rescaled tensors are overwritten, in place and at the
 * same length (float32 as float32, float16 as float16), so opset, metadata, names, node order,
 * value_info, doc strings and fields enorm does not know are kept by construction.
 */
import { ENormError } from '../../errors.js';
import type { Network, TensorRole } from '../../network/layers.js';
import { validateLayers } from '../../network/validate.js';
import { firstLine, quote } from '../text.js';
import { Builder, type OnnxBarrier } from './build.js';
import { graphFacts } from './graph.js';
import { mapNode } from './ops.js';
import { tensorDims } from './shapes.js';
import { elementCount, externalRef, FLOAT_TYPES, locate, roundToHalf, writePayload, type Payload } from './tensors.js';
import { decodeModel, type WireModel } from './wire.js';

export type { OnnxBarrier } from './build.js';

/** A tensor enorm may rescale: its name in the file, the layer and role it has in `network`, its array. */
export interface OnnxWeight {
  name: string;
  layer: string;
  role: TensorRole;
  /** The array in `network` (balanced in place); written back at the stored precision. */
  data: Float32Array;
  dtype: 'float32' | 'float16';
  /** Where its elements lie: in the model file, or in external file `payload.file`. */
  payload: Payload;
}

export interface OnnxModel {
  /** The enorm view: graph inputs, constants and outputs of ops enorm does not rescale are 'input' layers. */
  network: Network;
  /** The first graph input's name and per-example shape (batch axis dropped), -1 where the file leaves it open. */
  inputName: string;
  inputShape: number[];
  /** The tensors balancing may change; every other tensor is written back untouched. */
  weights: OnnxWeight[];
  /** Ops left out of the rescaling and tensors kept as they are, with the reason. */
  barriers: OnnxBarrier[];
  /**
   * Set when enorm's own float64 forward pass would not compute this model's function exactly
   * (a dilated Conv or pool, or pads other than none and TF 'same'): the balancing is still exact
   * and the CLI's check runs in onnxruntime, but figures from enorm's forward pass are withheld.
   */
  forwardDiffers?: string;
  opsets: { domain: string; version: number }[];
  /** The file as read, and the external data files by location: what writeOnnxModel patches. */
  source: { bytes: Uint8Array; external: ReadonlyMap<string, Uint8Array> };
}

export interface ReadOnnxModelOptions {
  /** Largest model accepted, in bytes. Default 2 GiB - 1 (protobuf's limit). */
  maxModelBytes?: number;
  /** External data files (data_location = EXTERNAL) by their `location`; readOnnxModelFile reads them. */
  externalData?: ReadonlyMap<string, Uint8Array> | Record<string, Uint8Array>;
}

const DEFAULT_MAX_MODEL_BYTES = 2 ** 31 - 1;

/** Decodes the protobuf, E_MODEL for anything that is not an ONNX ModelProto. */
function decode(bytes: Uint8Array, maxBytes: number): WireModel {
  if (!(bytes instanceof Uint8Array)) throw new ENormError('E_MODEL', 'readOnnxModel: the model must be a Uint8Array of the .onnx file');
  if (bytes.length > maxBytes) throw new ENormError('E_MEMORY', `the ONNX model is ${bytes.length} bytes, over the limit of ${maxBytes} bytes (option maxModelBytes)`);
  try {
    return decodeModel(bytes);
  } catch (e) {
    if (e instanceof ENormError) throw new ENormError(e.code, `not a valid ONNX model: ${e.message}`, e.details);
    throw new ENormError('E_MODEL', `not a valid ONNX model: ${firstLine(e, 120)}`);
  }
}

/** The external files the model's tensors name (initializers and Constant nodes), for a file reader to fetch. */
export function onnxExternalLocations(bytes: Uint8Array, options: Pick<ReadOnnxModelOptions, 'maxModelBytes'> = {}): string[] {
  const g = decode(bytes, options.maxModelBytes ?? DEFAULT_MAX_MODEL_BYTES).graph;
  const tensors = [...g.initializers, ...g.nodes.flatMap((n) => n.attributes.flatMap((a) => (a.t ? [a.t] : [])))];
  return [...new Set(tensors.flatMap((t) => externalRef(t)?.location ?? []))];
}

function firstInput(model: WireModel, name: string | undefined): { name: string; shape: number[] } {
  const info = model.graph.inputs.find((v) => v.name === name);
  const dims = info?.dims?.slice(1) ?? [];
  return { name: name ?? '', shape: dims.map((d) => (d !== null && Number.isSafeInteger(d) && d > 0 ? d : -1)) };
}

const FIXED_WIDTH: Record<number, number> = { 1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 16: 2 };

/**
 * Every initializer and Constant tensor's element count against the bytes it has (float tensors in
 * full, raw_data of other fixed-width types by length), so no later step meets a malformed tensor.
 */
function checkTensors(wire: WireModel, external: ReadonlyMap<string, Uint8Array>): void {
  const attributeTensors = wire.graph.nodes.flatMap((n) => n.attributes.flatMap((a) => (a.t ? [a.t] : [])));
  for (const t of [...wire.graph.initializers, ...attributeTensors]) {
    const count = elementCount(t);
    if (FLOAT_TYPES.has(t.dataType)) locate(t, (loc) => external.get(loc)?.length);
    else if (t.raw && FIXED_WIDTH[t.dataType] && t.raw.length !== count * FIXED_WIDTH[t.dataType]) {
      throw new ENormError('E_MODEL', `ONNX tensor ${quote(t.name)}: raw_data has ${t.raw.length} bytes for ${count} elements of ${FIXED_WIDTH[t.dataType]} bytes`);
    }
  }
}

/** Reads an untrusted ONNX model: ENormError E_MODEL / E_LAYER_KIND / E_MEMORY for what it refuses. */
export function readOnnxModel(bytes: Uint8Array, options: ReadOnnxModelOptions = {}): OnnxModel {
  const wire = decode(bytes, options.maxModelBytes ?? DEFAULT_MAX_MODEL_BYTES);
  const facts = graphFacts(wire.graph);
  const given = options.externalData ?? new Map<string, Uint8Array>();
  const external = new Map(given instanceof Map ? given : Object.entries(given));
  checkTensors(wire, external);
  const b = new Builder(facts, wire.graph.nodes, bytes, external, tensorDims(wire.graph, facts, bytes));
  for (const k of facts.order) {
    const n = wire.graph.nodes[k];
    if (b.absorbed.has(k) || (n.opType === 'Constant' && (n.domain === '' || n.domain === 'ai.onnx'))) continue;
    mapNode(b, k);
  }
  b.finish();
  const input = firstInput(wire, facts.inputs[0]);
  const inputLayer = b.network.find((l) => l.kind === 'input' && l.name === input.name);
  if (inputLayer && input.shape.length > 0 && input.shape.every((d) => d > 0)) Object.assign(inputLayer, { shape: input.shape });
  validateLayers(b.network);
  const weights = b.bindings.map((w): OnnxWeight => ({ ...w, dtype: w.payload.width === 2 ? 'float16' : 'float32' }));
  const forwardDiffers = b.forwardDiffers.length ? `${b.forwardDiffers[0]}${b.forwardDiffers.length > 1 ? ` (and ${b.forwardDiffers.length - 1} more)` : ''}` : undefined;
  return {
    network: b.network, inputName: input.name, inputShape: input.shape, weights, barriers: b.barriers,
    ...(forwardDiffers ? { forwardDiffers } : {}), opsets: wire.opsets, source: { bytes, external },
  };
}

/**
 * Rounds every float16 weight's array to the float16 value it will be stored as (to nearest, ties
 * to even), in place, so a check of the network sees what the written file holds. Idempotent.
 */
export function roundTrip(model: OnnxModel): OnnxModel {
  for (const w of model.weights) if (w.dtype === 'float16') for (let i = 0; i < w.data.length; i++) w.data[i] = roundToHalf(w.data[i]);
  return model;
}

/** The written model and the external data files it names (only those holding a rescaled tensor), by location. */
export function encodeOnnxModel(model: OnnxModel): { bytes: Uint8Array; external: Map<string, Uint8Array> } {
  roundTrip(model);
  const bytes = model.source.bytes.slice();
  const external = new Map<string, Uint8Array>();
  for (const w of model.weights) {
    const file = w.payload.file;
    let target: Uint8Array = bytes;
    if (file !== undefined) {
      const copy = external.get(file) ?? model.source.external.get(file)?.slice();
      if (!copy) throw new ENormError('E_STATE', `the external file of ONNX tensor ${quote(w.name)} is missing from the model`);
      external.set(file, copy);
      target = copy;
    }
    writePayload(target, w.payload, w.data, w.name);
  }
  return { bytes, external };
}

/** The balanced model as .onnx bytes (external data files: encodeOnnxModel). */
export function writeOnnxModel(model: OnnxModel): Uint8Array {
  return encodeOnnxModel(model).bytes;
}
