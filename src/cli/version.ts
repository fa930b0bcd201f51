/**
 * The package version, for `enorm --version`. A JSON import: tsx reads package.json when running
 * from src, and esbuild inlines it into dist/cli.js (and dist/node.js) when bundling.
 */
import pkg from '../../package.json' with { type: 'json' };

export const VERSION: string = pkg.version;
