// Bundles dist/ with esbuild, after tsc has written the declarations there (tsconfig.build.json).
//   dist/{index,tfjs,webgpu,model-io,onnx,node}.js   ESM, readable (not minified), the Wasm inlined as base64; shared code in dist/chunks/
//   dist/{index,tfjs}.workerd.js                  ESM, minified, for runtimes that refuse Wasm from bytes: `import m from './enorm.simd.wasm'`
//   dist/{index,tfjs}.edge-light.js               the same with Vercel's `?module` suffix
//   dist/cjs/*.js                                 CommonJS, readable (dist/cjs/package.json says so), with a copy of the declarations
//   dist/browser/{enorm,tfjs}.js                  ESM, minified, with every dependency bundled; tfjs stays a bare `@tensorflow/tfjs` import
//   dist/enorm.{simd,scalar}.wasm                 the builds, also exported as enorm/simd.wasm and enorm/scalar.wasm
//   dist/cli.js                                   the CLI, readable
// The Node builds (import / require conditions, the CLI) are not minified: Node prints the source line of an
// uncaught error, and a minified line is the whole file. They keep their names (keepNames), so a class is still
// `ENormError` and `ENorm` in stack traces and `constructor.name`. (ENormError sets `name` itself, in every build.)
// Prints gzipped sizes and fails when a minified entry (browser, workerd, edge-light) loads more than the budget
// at import: the package's own JS plus the SIMD Wasm.
import { build } from 'esbuild';
import { existsSync } from 'node:fs';
import { chmod, copyFile, cp, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';

// 30 KB until the model-file hardening: validating shapes before allocating (forward-shapes), reading
// the network once, the instance pool and the memory checks added 2.9 KB gzipped to the browser entry.
// 33 KB until issue 12: range equalisation (p = Infinity: max kernels in both Wasm builds and the JS
// backend, its stopping rule), the layer-norm and conv2d-transpose kinds and the geometry tables added 2.4 KB.
// 36 KB until issue 13: the read-only cycle (the deferral plan, three schedules, materialise, energy from the
// group steps), the convergence loop with SOR, and the Wasm's solve on f64 log scales (its own table-free
// ln / exp: AssemblyScript's Math.log / Math.exp would add 3.8 KB more) and scaleBoth added 3.3 KB.
const CORE_BUDGET_BYTES = 40 * 1024;
const LIBRARY_ENTRIES = { index: 'src/index.ts', tfjs: 'src/tfjs/index.ts', webgpu: 'src/webgpu.ts', 'model-io': 'src/model-io.ts', onnx: 'src/onnx.ts' };
const WASM_ENTRIES = { index: 'src/index.ts', tfjs: 'src/tfjs/index.ts' };

const common = { bundle: true, target: 'es2022', sourcemap: true, logLevel: 'warning', keepNames: true };
/** Browser and edge builds are downloaded or uploaded: minified, and without keepNames' `__name` calls (+1.4 KB gzipped on the browser entry). */
const minified = { minify: true, keepNames: false };
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
  edgeBuilds.push(await build({ ...library, ...esm, ...minified, entryPoints: WASM_ENTRIES, outdir: 'dist', entryNames: `[name].${runtime}`, chunkNames: `chunks/${runtime}-[hash]`, plugins: [staticWasm(suffix)] }));
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

const browser = await build({ ...esm, ...minified, platform: 'browser', entryPoints: { enorm: 'src/index.ts', tfjs: 'src/tfjs/index.ts' }, outdir: 'dist/browser', external: ['@tensorflow/tfjs'] });

await build({ ...common, packages: 'external', platform: 'node', format: 'esm', entryPoints: { cli: 'src/cli/bin.ts' }, outdir: 'dist', banner: { js: '#!/usr/bin/env node' } });
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
const [simdWasm, scalarWasm] = await Promise.all(['simd', 'scalar'].map(async (k) => gz(await readFile(`dist/enorm.${k}.wasm`))));

const nodeCore = await gzOf(loadedAtImport(metafile, join('dist', 'index.js')));
const scalarChunk = await gzOf(lazy(metafile, join('dist', 'index.js')));
// The browser entry bundles @assemblyscript/loader; the budget is on the package's own code, so the same
// build with the loader left external is measured too (in memory, not written).
const browserEntry = join('dist', 'browser', 'enorm.js');
const browserTotal = await gzOf(loadedAtImport(browser.metafile, browserEntry));
const ownBrowser = await build({ ...esm, ...minified, sourcemap: false, write: false, platform: 'browser', entryPoints: { enorm: 'src/index.ts' }, outdir: 'dist/browser', external: ['@tensorflow/tfjs', '@assemblyscript/loader'] });
const ownFiles = new Map(ownBrowser.outputFiles.map((f) => [relative(process.cwd(), f.path), f.contents]));
const browserOwn = [...loadedAtImport(ownBrowser.metafile, browserEntry)].reduce((a, f) => a + gz(ownFiles.get(f)), 0);

/** [label, gzipped bytes counted against the budget, what the figure holds] for every minified entry. */
const budgeted = [['browser entry dist/browser/enorm.js', browserOwn, `its JS with the SIMD Wasm inlined, without the bundled @assemblyscript/loader (${kb(browserTotal)} with it)`]];
for (const [i, runtime] of ['workerd', 'edge-light'].entries()) {
  const js = await gzOf(loadedAtImport(edgeBuilds[i].metafile, join('dist', `index.${runtime}.js`)));
  budgeted.push([`${runtime} entry dist/index.${runtime}.js`, js + simdWasm, `its JS ${kb(js)} + enorm.simd.wasm ${kb(simdWasm)} (it also imports enorm.scalar.wasm, ${kb(scalarWasm)})`]);
}

console.log('bundled dist/: ESM, workerd, edge-light, CommonJS, browser and CLI builds');
console.log(`Node ESM entry dist/index.js with the chunks it imports (not minified; JS + the SIMD Wasm inlined): ${kb(nodeCore)} gzipped`);
console.log(`  the scalar Wasm chunk, imported only where Wasm SIMD is missing or asked for: ${kb(scalarChunk)} gzipped`);
console.log(`  the .wasm files alone: simd ${kb(simdWasm)}, scalar ${kb(scalarWasm)} gzipped`);
console.log(`minified entries, what each loads at import (budget ${kb(CORE_BUDGET_BYTES)} gzipped):`);
for (const [label, bytes, holds] of budgeted) console.log(`  ${label}: ${kb(bytes)} gzipped: ${holds}`);
const over = budgeted.filter(([, bytes]) => bytes > CORE_BUDGET_BYTES);
for (const [label, bytes] of over) console.error(`bundle: the ${label} loads ${kb(bytes)} gzipped at import, over the ${kb(CORE_BUDGET_BYTES)} budget`);
if (over.length) process.exit(1);
