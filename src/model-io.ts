/** enorm/model-io: tfjs layers-model files (model.json + weights) to and from enorm networks, in memory. */
export { parseTfjsModel, serializeTfjsModel } from './model-io/tfjs/index.js';
export type { TfjsModel } from './model-io/tfjs/index.js';
