/**
 * The former path of the tfjs reader and writer, kept so that imports of it keep working
 * (test/helpers/fuzz-parse-child.ts); the code is in ./tfjs/.
 */
export * from './tfjs/index.js';
