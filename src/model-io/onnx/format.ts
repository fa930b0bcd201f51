/** The ONNX entry of the format registry (../formats.ts): one .onnx file, external data beside it. */
import type { ModelFormat } from '../format.js';
import { encodeOnnxModel, roundTrip, type OnnxModel } from './index.js';
import { foldOnnxBatchNorm } from './fold.js';
import { inheritSource, readOnnxModelFile, writeOnnxModelFile } from './node.js';
import { onnxRunner } from './runtime.js';

export const onnxFormat: ModelFormat<OnnxModel> = {
  name: 'onnx',
  argument: 'model.onnx',
  output: 'file',
  detect: (path) => /\.onnx$/i.test(path),
  read: (path) => readOnnxModelFile(path),
  // `-o` names the output file for ONNX.
  write: (model, path) => writeOnnxModelFile(model, path),
  // The arrays as the file will store them (float16 weights rounded), so the check sees the written model.
  verification: (model) => ({ network: roundTrip(model).network, inputShape: model.inputShape, ...(model.forwardDiffers ? { forwardDiffers: model.forwardDiffers } : {}) }),
  runtime: (model) => {
    const { bytes, external } = encodeOnnxModel(model);
    const all = new Map(model.source.external);
    for (const [name, file] of external) all.set(name, file);
    return onnxRunner(bytes, all);
  },
  // Conv / Gemm + BatchNormalization -> Conv / Gemm with the folded kernel and bias; the BN node is gone.
  foldBatchNorm: (model) => inheritSource(model, foldOnnxBatchNorm(model).model),
  weightNames: (model) => model.weights.map((w) => ({ name: w.name, data: w.data, layer: w.layer, tensor: w.role })),
};
