/** Node entry: everything in 'enorm' and 'enorm/model-io', plus reading and writing model files and the CLI. */
export * from './index.js';
export * from './model-io.js';
export { readTfjsModelFile, writeTfjsModelFile, type ReadTfjsModelOptions, type WriteTfjsModelOptions } from './model-io/files.js';
export { readOnnxModelFile, writeOnnxModelFile, type ReadOnnxModelFileOptions, type WriteOnnxModelFileOptions } from './model-io/onnx/node.js';
export * from './onnx.js';
export type { AtomicWriteStep } from './model-io/atomic-write.js';
export { main as runCli } from './cli/main.js';
