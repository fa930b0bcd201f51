/**
 * SwiftShader, a CPU Vulkan driver, from the `@sparticuz/chromium` devDependency: its
 * bin/swiftshader.tar.br holds a Vulkan loader (libvulkan.so.1), the driver (libvk_swiftshader.so)
 * and the driver's manifest (vk_swiftshader_icd.json), built for linux-x64 against libc, libm,
 * libpthread and libgcc only. Extracted once per package version into a git-ignored cache, this
 * gives Dawn a WebGPU adapter on a machine with no GPU and no system Vulkan.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliDecompressSync } from 'node:zlib';
import { x as extractTar } from 'tar';

/** The files Dawn needs: the loader, the driver, and the manifest that names the driver. */
export const SWIFTSHADER_FILES = ['libvulkan.so.1', 'libvk_swiftshader.so', 'vk_swiftshader_icd.json'] as const;

export const SWIFTSHADER_PACKAGE = '@sparticuz/chromium';

const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** node_modules/.cache is git-ignored (node_modules/) and goes away with `npm ci`, like the package. */
export const DEFAULT_CACHE_ROOT = join(PROJECT_ROOT, 'node_modules', '.cache', 'enorm-swiftshader');

export interface SwiftShader {
  /** Folder with the three files: goes first on LD_LIBRARY_PATH. */
  dir: string;
  /** vk_swiftshader_icd.json: the value for VK_ICD_FILENAMES. */
  icd: string;
  /** Version of the package the files came from (the cache key). */
  version: string;
}

export interface SwiftShaderSource {
  /** The brotli-compressed tar. */
  archive: string;
  version: string;
}

/** The archive inside the installed @sparticuz/chromium, and that package's version. */
export function swiftShaderSource(): SwiftShaderSource {
  // The package's "exports" hide package.json and bin/, so look in the folders Node would search.
  const searched = createRequire(import.meta.url).resolve.paths(SWIFTSHADER_PACKAGE) ?? [];
  const manifest = searched.map((folder) => join(folder, SWIFTSHADER_PACKAGE, 'package.json')).find((file) => existsSync(file));
  if (!manifest) throw new Error(`${SWIFTSHADER_PACKAGE} is not installed (it is a devDependency: run \`npm ci\`)`);
  const { version } = JSON.parse(readFileSync(manifest, 'utf8')) as { version: string };
  const archive = join(dirname(manifest), 'bin', 'swiftshader.tar.br');
  if (!existsSync(archive)) throw new Error(`${SWIFTSHADER_PACKAGE}@${version} has no bin/swiftshader.tar.br (${archive})`);
  return { archive, version };
}

/**
 * Why `dir` is not a usable SwiftShader folder, or null when it is: the three files are regular,
 * non-empty files and the manifest names libvk_swiftshader.so (relative paths in a Vulkan
 * manifest are resolved against the manifest's own folder).
 */
export function swiftShaderProblem(dir: string): string | null {
  for (const name of SWIFTSHADER_FILES) {
    const file = join(dir, name);
    if (!existsSync(file)) return `${name} is missing`;
    const stat = statSync(file);
    if (!stat.isFile() || stat.size === 0) return `${name} is not a non-empty regular file`;
  }
  try {
    const manifest = JSON.parse(readFileSync(join(dir, 'vk_swiftshader_icd.json'), 'utf8')) as { ICD?: { library_path?: unknown } };
    const library = manifest.ICD?.library_path;
    if (typeof library !== 'string' || !/(^|\/)libvk_swiftshader\.so$/.test(library)) {
      return `vk_swiftshader_icd.json names ${JSON.stringify(library)}, not libvk_swiftshader.so`;
    }
  } catch (e) {
    return `vk_swiftshader_icd.json is not JSON (${e instanceof Error ? e.message : String(e)})`;
  }
  return null;
}

const errorCode = (e: unknown) => (e as NodeJS.ErrnoException | undefined)?.code;

/**
 * The extracted driver, extracting it first when the cache has no complete copy. Idempotent and
 * atomic: the archive is unpacked into a fresh temporary folder beside the target, checked, and
 * renamed into place, so a reader sees the whole folder or none; when two processes race, the
 * first rename wins and the other's copy is deleted. On any error nothing is left behind.
 * Synchronous, so that a launcher can call it before anything else runs.
 */
export function ensureSwiftShader(options: { cacheRoot?: string; source?: SwiftShaderSource } = {}): SwiftShader {
  const { archive, version } = options.source ?? swiftShaderSource();
  if (!/^[\w.+-]+$/.test(version)) throw new Error(`${SWIFTSHADER_PACKAGE} has an unusable version ${JSON.stringify(version)}`);
  const cacheRoot = options.cacheRoot ?? DEFAULT_CACHE_ROOT;
  const dir = join(cacheRoot, version);
  const found = { dir, icd: join(dir, 'vk_swiftshader_icd.json'), version };
  if (existsSync(dir)) {
    if (swiftShaderProblem(dir) === null) return found;
    // Only a rename creates `dir`, so an incomplete one was damaged by hand: replace it.
    rmSync(dir, { recursive: true, force: true });
  }

  mkdirSync(cacheRoot, { recursive: true });
  const temp = join(cacheRoot, `.${version}.${process.pid}.${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}.tmp`);
  try {
    mkdirSync(temp);
    let tarBytes: Buffer;
    try {
      tarBytes = brotliDecompressSync(readFileSync(archive));
    } catch (e) {
      throw new Error(`${archive} is not a brotli stream (${e instanceof Error ? e.message : String(e)})`);
    }
    // Only the three top-level files; tar itself already refuses absolute and `..` paths.
    const wanted = new Set<string>(SWIFTSHADER_FILES);
    const unpack = extractTar({
      cwd: temp,
      sync: true,
      strict: true,
      preserveOwner: false, // as root, tar would otherwise chown to the archive's build user
      filter: (path, entry) => wanted.has(path.replace(/^\.\//, '')) && (entry as { type?: string }).type === 'File',
    });
    try {
      unpack.end(tarBytes);
    } catch (e) {
      throw new Error(`${archive} could not be unpacked (${e instanceof Error ? e.message : String(e)})`);
    }
    const problem = swiftShaderProblem(temp);
    if (problem) throw new Error(`${archive} does not hold the SwiftShader driver: ${problem}`);
    try {
      renameSync(temp, dir);
    } catch (e) {
      // Another process renamed its complete copy first: use that one.
      if (!['EEXIST', 'ENOTEMPTY', 'EPERM', 'EBUSY'].includes(errorCode(e) ?? '') || swiftShaderProblem(dir) !== null) throw e;
    }
    return found;
  } finally {
    rmSync(temp, { recursive: true, force: true });
  }
}
