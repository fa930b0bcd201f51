/** The tfjs layers-model entry of the format registry (../formats.ts): model.json + weight shards. */
import type { ModelFormat } from '../format.js';
import { readTfjsModelFile, writeTfjsModelFile } from '../files.js';
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
};
