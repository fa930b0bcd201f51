// Bundles dist/ with esbuild, after tsc has written the declarations there (tsconfig.build.json).
//   dist/{index,tfjs,webgpu,model-io,node}.js   ESM, minified, the Wasm inlined as base64; shared code in dist/chunks/
//   dist/{index,tfjs}.workerd.js                  ESM for runtimes that refuse Wasm from bytes: `import m from './enorm.simd.wasm'`
//   dist/{index,tfjs}.edge-light.js               the same with Vercel's `?module` suffix
//   dist/cjs/*.js                                 CommonJS (dist/cjs/package.json says so), with a copy of the declarations
//   dist/browser/{enorm,tfjs}.js                  ESM with every dependency bundled; tfjs stays a bare `@tensorflow/tfjs` import
//   dist/enorm.{simd,scalar}.wasm                 the builds, also exported as enorm/simd.wasm and enorm/scalar.wasm
//   dist/cli.js                                   the CLI
// Prints the gzipped size of the core ESM entry (JS plus the inlined Wasm) and fails above the budget.
import { build } from 'esbuild';
import { existsSync } from 'node:fs';
import { chmod, copyFile, cp, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';

const CORE_BUDGET_BYTES = 30 * 1024;
const LIBRARY_ENTRIES = { index: 'src/index.ts', tfjs: 'src/tfjs/index.ts', webgpu: 'src/webgpu.ts', 'model-io': 'src/model-io.ts' };
const WASM_ENTRIES = { index: 'src/index.ts', tfjs: 'src/tfjs/index.ts' };

const common = { bundle: true, target: 'es2022', sourcemap: true, logLevel: 'warning', minify: true };
/** ESM builds split shared code into chunks: enorm and enorm/tfjs share one engine, and the scalar Wasm loads only when used. */
const esm = { ...common, format: 'esm', splitting: true, chunkNames: 'chunks/[name]-[hash]', metafile: true };
const library = { ...common, packages: 'external', platform: 'neutral' };

/** Swaps the inlined Wasm (engine/wasm/modules.ts) for static imports of the shipped .wasm files. */
const staticWasm = (suffix) => ({
  name: 'static-wasm',
  setup(b) {
    b.onResolve({ filter: /^\.\/modules\.js$/ }, (args) =>
      args.importer.endsWith(join('engine', 'wasm', 'bridge.ts')) ? { path: join(args.resolveDir, 'modules.static.ts') } : undefined);
    // From dist/chunks/, where the engine lands.
    b.onResolve({ filter: /^enorm-wasm:/ }, (args) => ({ path: `../enorm.${args.path.slice('enorm-wasm:'.length)}.wasm${suffix}`, external: true }));
  },
});

async function declarationFiles(dir) {
  const out = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await declarationFiles(p)));
    else if (e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

const { metafile } = await build({ ...library, ...esm, entryPoints: { ...LIBRARY_ENTRIES, node: 'src/node.ts' }, outdir: 'dist' });
const edgeBuilds = [];
for (const [runtime, suffix] of [['workerd', ''], ['edge-light', '?module']]) {
  edgeBuilds.push(await build({ ...library, ...esm, entryPoints: WASM_ENTRIES, outdir: 'dist', entryNames: `[name].${runtime}`, chunkNames: `chunks/${runtime}-[hash]`, plugins: [staticWasm(suffix)] }));
}

await build({ ...library, format: 'cjs', entryPoints: LIBRARY_ENTRIES, outdir: 'dist/cjs' });
await build({ ...common, packages: 'external', platform: 'node', format: 'cjs', entryPoints: { node: 'src/node.ts' }, outdir: 'dist/cjs' });
await writeFile('dist/cjs/package.json', `${JSON.stringify({ type: 'commonjs' })}\n`);
// The same declarations, read as CommonJS under dist/cjs/package.json.
for (const file of await declarationFiles('dist')) {
  if (file.startsWith(join('dist', 'cjs'))) continue;
  const to = join('dist', 'cjs', relative('dist', file));
  await mkdir(dirname(to), { recursive: true });
  await copyFile(file, to);
}

const browser = await build({ ...esm, platform: 'browser', entryPoints: { enorm: 'src/index.ts', tfjs: 'src/tfjs/index.ts' }, outdir: 'dist/browser', external: ['@tensorflow/tfjs'] });

await build({ ...common, minify: false, packages: 'external', platform: 'node', format: 'esm', entryPoints: { cli: 'src/cli/bin.ts' }, outdir: 'dist', banner: { js: '#!/usr/bin/env node' } });
await chmod('dist/cli.js', 0o755);

for (const kind of ['simd', 'scalar']) await cp(`build/enorm.${kind}.wasm`, `dist/enorm.${kind}.wasm`);
// Every .wasm import of the edge builds names a shipped file, seen from the file that imports it.
for (const { metafile: meta } of edgeBuilds) {
  for (const [file, out] of Object.entries(meta.outputs)) {
    for (const i of out.imports) {
      if (!/\.wasm(\?module)?$/.test(i.path)) continue;
      if (!existsSync(resolve(dirname(file), i.path.replace(/\?module$/, '')))) throw new Error(`bundle: ${file} imports ${i.path}, which is not in dist/`);
    }
  }
}

const gz = (bytes) => gzipSync(bytes, { level: 9 }).length;
const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
/** An output file and the chunks it loads at import time (static imports), transitively. */
function loadedAtImport(meta, file, seen = new Set()) {
  if (seen.has(file)) return seen;
  seen.add(file);
  for (const i of meta.outputs[file].imports) if (i.kind === 'import-statement' && meta.outputs[i.path]) loadedAtImport(meta, i.path, seen);
  return seen;
}
const gzOf = async (files) => (await Promise.all([...files].map(async (f) => gz(await readFile(f))))).reduce((a, b) => a + b, 0);
const lazy = (meta, entry) => Object.keys(meta.outputs).filter((f) => f.endsWith('.js') && !loadedAtImport(meta, entry).has(f) && meta.outputs[f].inputs[join('src', 'engine', 'wasm', 'binaries.scalar.generated.ts')]);
const core = await gzOf(loadedAtImport(metafile, join('dist', 'index.js')));
const scalarChunk = await gzOf(lazy(metafile, join('dist', 'index.js')));
const browserCore = await gzOf(loadedAtImport(browser.metafile, join('dist', 'browser', 'enorm.js')));
const wasm = await Promise.all(['simd', 'scalar'].map(async (k) => gz(await readFile(`dist/enorm.${k}.wasm`))));
console.log('bundled dist/: ESM, workerd, edge-light, CommonJS, browser and CLI builds');
console.log(`core ESM entry dist/index.js with the chunks it imports (JS + the SIMD Wasm inlined): ${kb(core)} gzipped (budget ${kb(CORE_BUDGET_BYTES)})`);
console.log(`  the scalar Wasm chunk, imported only where Wasm SIMD is missing or asked for: ${kb(scalarChunk)} gzipped`);
console.log(`  the .wasm files alone: simd ${kb(wasm[0])}, scalar ${kb(wasm[1])} gzipped`);
console.log(`browser entry dist/browser/enorm.js with its chunks (@assemblyscript/loader bundled): ${kb(browserCore)} gzipped`);
if (core > CORE_BUDGET_BYTES) {
  console.error(`bundle: the core ESM entry is ${kb(core)} gzipped, over the ${kb(CORE_BUDGET_BYTES)} budget`);
  process.exit(1);
}
