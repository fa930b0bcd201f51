/** enorm/onnx: ONNX models to and from enorm networks, in memory, in every runtime (file access: enorm/node). */
export { readOnnxModel, writeOnnxModel, encodeOnnxModel, roundTrip, onnxExternalLocations } from './model-io/onnx/index.js';
export type { OnnxModel, OnnxWeight, OnnxBarrier, ReadOnnxModelOptions } from './model-io/onnx/index.js';
export { foldOnnxBatchNorm, type FoldResult } from './model-io/onnx/fold.js';
