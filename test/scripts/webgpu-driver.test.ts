// The bundled SwiftShader driver (scripts/swiftshader.ts), the environment that lets Dawn load it
// (scripts/webgpu-env.ts, scripts/webgpu-global-setup.ts) and the re-execution of scripts that
// import scripts/webgpu-node.ts without it.
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { brotliCompressSync, brotliDecompressSync, constants as zlib } from 'node:zlib';
import { c as createTar } from 'tar';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureSwiftShader, SWIFTSHADER_FILES, swiftShaderProblem, swiftShaderSource, type SwiftShader } from '../../scripts/swiftshader.js';
import { SWIFTSHADER_ERROR_VAR, SWIFTSHADER_ICD_VAR, webgpuEnvironment } from '../../scripts/webgpu-env.js';

/** Quality 1: the default (11) takes close to a minute on a 5 MB tar. */
const brotli = (bytes: Buffer) => brotliCompressSync(bytes, { params: { [zlib.BROTLI_PARAM_QUALITY]: 1 } });

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const scratch = mkdtempSync(join(tmpdir(), 'enorm-swiftshader-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
let folders = 0;
const freshFolder = () => {
  const dir = join(scratch, `f${folders++}`);
  mkdirSync(dir);
  return dir;
};

/** A brotli-compressed tar of `files` (name -> contents), as a SwiftShader source. */
function archiveOf(files: Record<string, string | Buffer>, version = '1.2.3') {
  const staging = freshFolder();
  for (const [name, body] of Object.entries(files)) writeFileSync(join(staging, name), body);
  const tarFile = join(freshFolder(), 'x.tar');
  createTar({ file: tarFile, cwd: staging, sync: true }, Object.keys(files));
  const archive = join(dirname(tarFile), 'x.tar.br');
  writeFileSync(archive, brotli(readFileSync(tarFile)));
  return { archive, version };
}

const run = (args: string[], env: NodeJS.ProcessEnv) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((done) => {
    execFile(process.execPath, args, { env, cwd: ROOT, timeout: 120_000 }, (error, stdout, stderr) =>
      done({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr }));
  });

/** This process's environment as a fresh shell has it: no vitest, no prepared driver. */
function unpreparedEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of ['VITEST', 'VITEST_MODE', 'VITEST_POOL_ID', 'VITEST_WORKER_ID', SWIFTSHADER_ICD_VAR, SWIFTSHADER_ERROR_VAR, 'LD_LIBRARY_PATH', 'VK_ICD_FILENAMES', 'VK_DRIVER_FILES']) delete env[name];
  return { ...env, ...extra };
}

describe('ensureSwiftShader: the driver unpacked from @sparticuz/chromium', () => {
  it('unpacks the three files once into <cache>/<version> and reuses them afterwards', () => {
    const cacheRoot = freshFolder();
    const first = ensureSwiftShader({ cacheRoot });
    expect(first.dir).toBe(join(cacheRoot, swiftShaderSource().version));
    expect(first.icd).toBe(join(first.dir, 'vk_swiftshader_icd.json'));
    expect(readdirSync(cacheRoot)).toEqual([first.version]); // no temporary folder left
    expect(readdirSync(first.dir).sort()).toEqual([...SWIFTSHADER_FILES].sort());
    expect(swiftShaderProblem(first.dir)).toBeNull();
    const loader = statSync(join(first.dir, 'libvulkan.so.1'));
    expect(loader.mode & 0o111).not.toBe(0); // the libraries keep their mode bits
    expect(loader.uid).toBe(process.getuid!()); // not the archive's build user, even as root

    const again = ensureSwiftShader({ cacheRoot });
    expect(again).toEqual(first);
    expect(statSync(join(again.dir, 'libvulkan.so.1')).ino).toBe(loader.ino); // not unpacked again
  });

  it('replaces a damaged cache folder', () => {
    const cacheRoot = freshFolder();
    const { dir } = ensureSwiftShader({ cacheRoot });
    rmSync(join(dir, 'libvk_swiftshader.so'));
    writeFileSync(join(dir, 'vk_swiftshader_icd.json'), '{');
    expect(swiftShaderProblem(dir)).toMatch(/libvk_swiftshader\.so is missing/);
    ensureSwiftShader({ cacheRoot });
    expect(swiftShaderProblem(dir)).toBeNull();
    expect(readdirSync(cacheRoot)).toEqual([basename(dir)]);
  });

  const { archive: realArchive } = swiftShaderSource();
  const realTar = () => brotliDecompressSync(readFileSync(realArchive));
  const icd = '{"file_format_version": "1.0.0", "ICD": {"library_path": "./libvk_swiftshader.so", "api_version": "1.0.5"}}';
  const bad: [string, () => { archive: string; version: string }, RegExp][] = [
    ['not brotli', () => { const f = join(freshFolder(), 'x.tar.br'); writeFileSync(f, 'plain text, not brotli'); return { archive: f, version: '1.0.0' }; }, /is not a brotli stream/],
    ['a truncated tar', () => { const f = join(freshFolder(), 'x.tar.br'); writeFileSync(f, brotli(realTar().subarray(0, 5_000_000))); return { archive: f, version: '1.0.0' }; }, /could not be unpacked/],
    ['a tar without the driver', () => archiveOf({ 'libvulkan.so.1': 'elf', 'vk_swiftshader_icd.json': icd }), /does not hold the SwiftShader driver: libvk_swiftshader\.so is missing/],
    ['a manifest naming another library', () => archiveOf({ 'libvulkan.so.1': 'elf', 'libvk_swiftshader.so': 'elf', 'vk_swiftshader_icd.json': icd.replace('libvk_swiftshader', 'libother') }), /names "\.\/libother\.so"/],
  ];
  it.each(bad)('%s: an error naming the archive, and nothing left in the cache', (_, source, message) => {
    const cacheRoot = freshFolder();
    const src = source();
    let error: unknown;
    try {
      ensureSwiftShader({ cacheRoot, source: src });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).toContain(src.archive);
    expect(readdirSync(cacheRoot)).toEqual([]);
  });

  it('concurrent first uses in several processes end with one complete folder', async () => {
    const cacheRoot = freshFolder();
    const code = `import { ensureSwiftShader } from ${JSON.stringify(pathToFileURL(join(ROOT, 'scripts/swiftshader.ts')).href)};
      console.log(ensureSwiftShader({ cacheRoot: ${JSON.stringify(cacheRoot)} }).dir);`;
    const runs = await Promise.all([0, 1, 2].map(() => run(['--import', 'tsx', '--input-type=module', '-e', code], unpreparedEnv())));
    for (const r of runs) expect(r, r.stderr).toMatchObject({ code: 0 });
    expect(new Set(runs.map((r) => r.stdout.trim()))).toEqual(new Set([join(cacheRoot, swiftShaderSource().version)]));
    expect(readdirSync(cacheRoot)).toEqual([swiftShaderSource().version]);
    expect(swiftShaderProblem(join(cacheRoot, swiftShaderSource().version))).toBeNull();
  });
});

describe('webgpuEnvironment: what a process needs to start with', () => {
  const driver: SwiftShader = { dir: '/cache/9.9.9', icd: '/cache/9.9.9/vk_swiftshader_icd.json', version: '9.9.9' };
  const linux = { platform: 'linux' as const, arch: 'x64', prepare: () => driver };

  it('puts the driver folder first on LD_LIBRARY_PATH, keeping the user\'s entries, and names the manifest', () => {
    expect(webgpuEnvironment({}, linux)).toEqual({ LD_LIBRARY_PATH: driver.dir, [SWIFTSHADER_ICD_VAR]: driver.icd });
    expect(webgpuEnvironment({ LD_LIBRARY_PATH: '/opt/a:/opt/b' }, linux)).toEqual({ LD_LIBRARY_PATH: `${driver.dir}:/opt/a:/opt/b`, [SWIFTSHADER_ICD_VAR]: driver.icd });
  });

  it('pins VK_ICD_FILENAMES to SwiftShader only when asked and only when the user chose no driver', () => {
    expect(webgpuEnvironment({}, { ...linux, pinDriver: true }).VK_ICD_FILENAMES).toBe(driver.icd);
    for (const chosen of [{ VK_ICD_FILENAMES: '/usr/share/vulkan/icd.d/nvidia_icd.json' }, { VK_DRIVER_FILES: '/etc/vulkan/icd.d/radeon_icd.json' }]) {
      const added = webgpuEnvironment(chosen, { ...linux, pinDriver: true });
      expect(added).not.toHaveProperty('VK_ICD_FILENAMES');
      expect(added.LD_LIBRARY_PATH).toBe(driver.dir); // the bundled loader also finds hardware drivers
    }
  });

  it('an environment prepared already is not prepared again', () => {
    const prepare = () => { throw new Error('must not be called'); };
    expect(webgpuEnvironment({ [SWIFTSHADER_ICD_VAR]: driver.icd, LD_LIBRARY_PATH: driver.dir }, { ...linux, prepare })).toEqual({});
    expect(webgpuEnvironment({ [SWIFTSHADER_ICD_VAR]: driver.icd }, { ...linux, prepare, pinDriver: true })).toEqual({ VK_ICD_FILENAMES: driver.icd });
  });

  it('a driver that cannot be prepared is a reason, not an exception; other systems need nothing', () => {
    const prepare = () => { throw new Error('@sparticuz/chromium is not installed'); };
    expect(webgpuEnvironment({}, { ...linux, prepare, pinDriver: true })).toEqual({ [SWIFTSHADER_ERROR_VAR]: '@sparticuz/chromium is not installed' });
    expect(webgpuEnvironment({}, { ...linux, arch: 'arm64' })[SWIFTSHADER_ERROR_VAR]).toMatch(/linux-x64 only, not linux-arm64/);
    for (const platform of ['darwin', 'win32'] as const) expect(webgpuEnvironment({}, { ...linux, platform, prepare, pinDriver: true })).toEqual({});
  });
});

describe('WebGPU on a machine without system Vulkan', () => {
  it('this test worker started with the bundled driver (vitest global setup, forked workers)', () => {
    const icdFile = process.env[SWIFTSHADER_ICD_VAR];
    expect(icdFile).toBe(ensureSwiftShader().icd);
    expect(process.env.LD_LIBRARY_PATH?.split(':')[0]).toBe(dirname(icdFile!));
    expect(process.env.VK_ICD_FILENAMES).toBeTruthy(); // SwiftShader, or the driver the user chose
  });

  it('a fresh Node process with only that environment gets a SwiftShader adapter from Dawn', async () => {
    const env = { PATH: process.env.PATH, HOME: process.env.HOME, ...webgpuEnvironment({}, { pinDriver: true }) };
    const code = "const { create } = await import('webgpu'); const a = await create([]).requestAdapter(); console.log(a ? a.info.architecture + ' ' + a.info.description : 'none');";
    const r = await run(['--input-type=module', '-e', code], env);
    expect(r.stdout.trim()).toMatch(/^swiftshader /i);
  });

  /** Writes a script that imports scripts/webgpu-node.ts, prints what it saw as one JSON line and exits 7. */
  function probeScript(): string {
    const file = join(freshFolder(), 'probe.mts'); // an ES module wherever it lies
    writeFileSync(file, `import { describeAdapter, gpuAdapter, probeHardwareAdapter } from ${JSON.stringify(pathToFileURL(join(ROOT, 'scripts/webgpu-node.ts')).href)};
const hardware = await probeHardwareAdapter();
let adapter: string;
try { adapter = describeAdapter((await gpuAdapter()).info); } catch (e) { adapter = 'error: ' + (e as Error).message; }
console.log(JSON.stringify({ icd: process.env.${SWIFTSHADER_ICD_VAR} ?? null, ld: process.env.LD_LIBRARY_PATH ?? null, vk: process.env.VK_ICD_FILENAMES ?? null, args: process.argv.slice(2), hardware, adapter }));
process.exitCode = 7;
`);
    return file;
  }
  const lines = (stdout: string) => stdout.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));

  it('a script importing scripts/webgpu-node.ts without it re-executes itself once, with its arguments and exit status, and gets SwiftShader', async () => {
    const { dir, icd } = ensureSwiftShader();
    const r = await run(['--import', 'tsx', probeScript(), 'two words', '--flag'], unpreparedEnv());
    expect(r.code, r.stderr).toBe(7);
    const seen = lines(r.stdout);
    expect(seen).toHaveLength(1); // the body ran once, in the re-executed process
    expect(seen[0]).toMatchObject({ icd, args: ['two words', '--flag'], vk: icd });
    expect(seen[0].ld.split(':')[0]).toBe(dir);
    expect(seen[0].adapter).toMatch(/swiftshader/i);
    // Without VK_ICD_FILENAMES the probe sees the system's drivers only: a real GPU or nothing.
    expect(seen[0].hardware === null || !/swiftshader/i.test(JSON.stringify(seen[0].hardware))).toBe(true);
  });

  it('a driver the user chose is kept, and probeHardwareAdapter does not report SwiftShader as hardware', async () => {
    // The user's own manifest, elsewhere, for the same driver (by absolute path).
    const { dir } = ensureSwiftShader();
    const chosen = join(freshFolder(), 'my_icd.json');
    writeFileSync(chosen, JSON.stringify({ file_format_version: '1.0.0', ICD: { library_path: join(dir, 'libvk_swiftshader.so'), api_version: '1.0.5' } }));
    const r = await run(['--import', 'tsx', probeScript()], unpreparedEnv({ VK_ICD_FILENAMES: chosen }));
    expect(r.code, r.stderr).toBe(7);
    const [seen] = lines(r.stdout);
    expect(seen).toMatchObject({ vk: chosen, hardware: null });
    expect(seen.adapter).toMatch(/swiftshader/i);
  });

  it('when the driver could not be prepared, gpuAdapter fails with the reason and what to do (the suites fail, never skip)', async () => {
    const r = await run(['--import', 'tsx', probeScript()], unpreparedEnv({ [SWIFTSHADER_ERROR_VAR]: 'simulated: archive unreadable', VK_ICD_FILENAMES: join(scratch, 'no-such-driver.json') }));
    expect(r.code, r.stderr).toBe(7);
    const [seen] = lines(r.stdout);
    expect(seen.icd).toBeNull(); // no re-execution once preparing has failed
    expect(seen.adapter).toMatch(/^error: WebGPU is not available: Dawn found no adapter/);
    expect(seen.adapter).toContain('simulated: archive unreadable');
    expect(seen.adapter).toContain('npm ci');
    expect(seen.adapter).toContain('VK_ICD_FILENAMES');
  });
});
