/** The tfjs layers-model entry of the format registry (../formats.ts): model.json + weight shards. */
import { layerName } from '../../network/layers.js';
import type { ModelFormat } from '../format.js';
import { readTfjsModelFile, writeTfjsModelFile } from '../files.js';
import { foldTfjsBatchNorm } from './fold.js';
import type { TfjsModel } from './index.js';

export const tfjsFormat: ModelFormat<TfjsModel> = {
  name: 'tfjs',
  argument: 'model.json',
  output: 'dir',
  // A tfjs model is named by its model.json; the contents are checked by read().
  detect: (path) => /\.json$/i.test(path),
  read: (path) => readTfjsModelFile(path),
  write: (model, dir) => writeTfjsModelFile(model, dir),
  verification: (model) => ({ network: model.network, inputShape: model.inputShape }),
  foldBatchNorm: (model) => foldTfjsBatchNorm(model),
  weightNames: (model) => tfjsWeightNames(model),
};

const RESCALED_TENSORS = ['weight', 'bias', 'gamma', 'beta'] as const;

/** Every rescaled array of the network with its manifest name ('dense_1/kernel'): the entry that holds that very array. */
export function tfjsWeightNames(model: TfjsModel): { name: string; data: Float32Array; layer: string; tensor: string }[] {
  const nameOf = new Map(model.weights.map((w) => [w.data, w.name]));
  return model.network.flatMap((layer, k) => RESCALED_TENSORS.flatMap((tensor) => {
    const data = (layer as Partial<Record<(typeof RESCALED_TENSORS)[number], Float32Array>>)[tensor];
    const name = data === undefined ? undefined : nameOf.get(data);
    return name === undefined || data === undefined ? [] : [{ name, data, layer: layerName(layer, k), tensor }];
  }));
}
