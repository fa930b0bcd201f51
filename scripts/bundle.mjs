// Bundles the library entries and the CLI into dist/ with esbuild (the Wasm binaries are inlined).
import { build } from 'esbuild';
import { chmod } from 'node:fs/promises';

const common = { bundle: true, format: 'esm', target: 'es2022', packages: 'external', sourcemap: true, logLevel: 'warning' };

await build({ ...common, entryPoints: { index: 'src/index.ts' }, outdir: 'dist', platform: 'neutral' });
await build({ ...common, entryPoints: { node: 'src/node.ts' }, outdir: 'dist', platform: 'node' });
await build({ ...common, entryPoints: { tfjs: 'src/tfjs/index.ts' }, outdir: 'dist', platform: 'neutral' });
await build({ ...common, entryPoints: { cli: 'src/cli/bin.ts' }, outdir: 'dist', platform: 'node', banner: { js: '#!/usr/bin/env node' } });
await chmod('dist/cli.js', 0o755);
console.log('bundled dist/index.js, dist/node.js, dist/tfjs.js, dist/cli.js');
