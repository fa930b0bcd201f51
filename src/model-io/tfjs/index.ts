/**
 * Reader and writer for TensorFlow.js layers models (model.json + binary weight shards),
 * runtime-neutral: no file system here (see ../files.ts for Node). The bytes go through codec.ts,
 * the topology through mapper.ts (shared with the live-model adapter), layer classes through layers.ts.
 *
 * Parsing maps every tfjs layer to one or more enorm layers whose tensors are the very
 * Float32Arrays held by the model's weight entries, so balancing `model.network` in
 * place changes what `serializeTfjsModel` writes.
 *
 * The file is untrusted: its nesting is checked iteratively before anything else reads it,
 * names are looked up in Maps (never in objects, whose prototype answers 'constructor'), and
 * every name or value quoted in a message goes through ../text.ts.
 */
import type { Network } from '../../network/layers.js';
import { describe, fail, isObject, type Json } from '../shared.js';
import { checkJsonDepth } from '../text.js';
import { decodeWeights, encodeWeights, readManifest, type TfjsWeight } from './codec.js';
import { mapTopology } from './mapper.js';

export type { TfjsDtype, TfjsWeight } from './codec.js';

export interface TfjsModel {
  /** enorm layers; their Float32Arrays are the `data` of entries in `weights`. */
  network: Network;
  /** Per-example shape of the (first) model input, from batch_input_shape; -1 where the file leaves a dimension open. */
  inputShape: number[];
  /** The `modelTopology` object exactly as read; written back unchanged. */
  topology: Record<string, unknown>;
  /** Every weight of the manifest, in manifest order. */
  weights: TfjsWeight[];
  /** Kept from the source file and written back when present. */
  generatedBy?: string;
  trainingConfig?: unknown;
  userDefinedMetadata?: unknown;
}

export interface ParseOptions {
  /** Name used at the start of every error message. Default 'model.json'. */
  source?: string;
}

/**
 * Parses a tfjs layers model. `weightData` is either all shards concatenated in manifest
 * order or one buffer per shard path (in manifest order). Throws ENormError E_MODEL for
 * corrupt or unsupported files and E_LAYER_KIND for layers enorm cannot represent.
 */
export function parseTfjsModel(modelJson: unknown, weightData: ArrayBuffer | ArrayBuffer[], options: ParseOptions = {}): TfjsModel {
  const src = options.source ?? 'model.json';
  if (!isObject(modelJson)) fail('E_MODEL', `${src}: not a tfjs model (expected a JSON object)`);
  checkJsonDepth(src, modelJson);
  const format = modelJson.format;
  if (format !== undefined && format !== 'layers-model') {
    fail('E_MODEL', `${src}: format ${describe(format)} is not supported; enorm reads tfjs layers models ('layers-model')`);
  }
  const topology = modelJson.modelTopology;
  if (!isObject(topology)) fail('E_MODEL', `${src}: 'modelTopology' is missing or not an object`);
  if (modelJson.weightsManifest === undefined) fail('E_MODEL', `${src}: 'weightsManifest' is missing`);
  const groups = readManifest(src, modelJson.weightsManifest);
  const weights = decodeWeights(src, groups, weightData);
  const weightByName = new Map(weights.map((w) => [w.name, w]));

  const { network, inputShape } = mapTopology(src, topology, {
    info: (name) => weightByName.get(name),
    data: (name) => weightByName.get(name)!.data as Float32Array,
  });

  const model: TfjsModel = { network, inputShape, topology, weights };
  if (typeof modelJson.generatedBy === 'string') model.generatedBy = modelJson.generatedBy;
  if (modelJson.trainingConfig !== undefined && modelJson.trainingConfig !== null) model.trainingConfig = modelJson.trainingConfig;
  if (modelJson.userDefinedMetadata !== undefined && modelJson.userDefinedMetadata !== null) model.userDefinedMetadata = modelJson.userDefinedMetadata;
  return model;
}

/**
 * Writes the model back: the same topology, every weight in manifest order in one shard
 * (float32 weights with their current values, the others byte for byte as read).
 */
export function serializeTfjsModel(model: TfjsModel, weightsPath = 'weights.bin'): { modelJson: object; weightData: ArrayBuffer } {
  const weightData = encodeWeights(model.weights);
  const modelJson: Json = {
    format: 'layers-model',
    generatedBy: model.generatedBy ?? 'enorm',
    convertedBy: 'enorm',
    modelTopology: model.topology,
    weightsManifest: [{
      paths: [weightsPath],
      weights: model.weights.map((w) => (w.group === undefined
        ? { name: w.name, shape: [...w.shape], dtype: w.dtype }
        : { name: w.name, shape: [...w.shape], dtype: w.dtype, group: w.group })),
    }],
  };
  if (model.trainingConfig !== undefined) modelJson.trainingConfig = model.trainingConfig;
  if (model.userDefinedMetadata !== undefined) modelJson.userDefinedMetadata = model.userDefinedMetadata;
  return { modelJson, weightData };
}
