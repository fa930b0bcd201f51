/** Node entry: everything in 'enorm', plus reading and writing tfjs model files. */
export * from './index.js';
export { readTfjsModelFile, writeTfjsModelFile } from './model-io/files.js';
export { main as runCli } from './cli/main.js';
