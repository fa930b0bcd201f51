/**
 * Reading untrusted files in Node: regular files only, opened without blocking (a FIFO open
 * cannot hang), read with the size fstat gives (a device cannot grow memory without bound),
 * and shard paths confined to the model's folder. Messages quote file text through ./text.ts.
 */
import { constants, type Stats } from 'node:fs';
import { lstat, open, realpath, stat } from 'node:fs/promises';
import { dirname, isAbsolute, posix, relative, resolve, sep, win32 } from 'node:path';
import { firstLine } from './text.js';

/**
 * Why a manifest shard path is refused before the file system is touched, or undefined.
 * Paths are relative, '/'-separated and stay inside the folder even lexically.
 */
export function lexicalShardProblem(path: string): string | undefined {
  if (path.includes('\0')) return 'contains a NUL byte';
  if (/\p{Cc}/u.test(path)) return 'contains a control character';
  if (path.includes('\\')) return "contains a backslash (shard paths are '/'-separated and relative)";
  if (/^[a-z][a-z0-9+.-]*:/i.test(path)) return "is a URL or a drive path; enorm reads shard files from the model's folder only";
  if (path.startsWith('/') || win32.isAbsolute(path)) return "is an absolute path; shard paths are relative to the model's folder";
  const normal = posix.normalize(path);
  if (normal === '..' || normal.startsWith('../')) return "leaves the model's folder ('..')";
  return undefined;
}

function within(folderReal: string, target: string, folderItself: boolean): boolean {
  const rel = relative(folderReal, target);
  if (rel === '') return folderItself;
  return rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
}

export type ShardLocation =
  | { found: true; real: string; stats: Stats }
  | { found: false; why: 'missing' | 'outside' | 'not-regular' };

/**
 * Resolves `path` (relative to `folder`, whose realpath is `folderReal`) after following every
 * symlink. 'outside' covers every case that could depend on what lies outside the folder (a
 * target outside, a dangling link, an unreadable component), so its message is the same whether
 * such a target exists or not; 'missing' is said only when the file's own folder resolves inside
 * and nothing, not even a link, is there.
 */
export async function locateShard(folder: string, folderReal: string, path: string): Promise<ShardLocation> {
  const full = resolve(folder, path);
  let real: string;
  try {
    real = await realpath(full);
  } catch {
    const parentReal = await realpath(dirname(full)).catch(() => undefined);
    if (parentReal !== undefined && within(folderReal, parentReal, true)) {
      const entry = await lstat(full).then(() => 'present', (e: NodeJS.ErrnoException) => e.code);
      if (entry === 'ENOENT') return { found: false, why: 'missing' };
    }
    return { found: false, why: 'outside' };
  }
  if (!within(folderReal, real, false)) return { found: false, why: 'outside' };
  const stats = await stat(real);
  return stats.isFile() ? { found: true, real, stats } : { found: false, why: 'not-regular' };
}

/** Why readRegularFile gave up; the caller turns it into a message naming the file. */
export class FileReadProblem extends Error {
  constructor(readonly reason: 'missing' | 'not-regular' | 'too-large' | 'no-memory' | 'changed' | 'unreadable', message: string, readonly size?: number) {
    super(message);
  }
}

const NOT_REGULAR = 'not a regular file (a folder, FIFO, device or socket)';
const READ_CHUNK = 1 << 30; // one read() moves at most 2 GiB - 1 in Node

/**
 * Reads a regular file: open with O_NONBLOCK (and O_NOFOLLOW when `noFollow`), fstat the
 * descriptor, refuse anything but a regular file or one over `maxBytes`, then read exactly the
 * fstat'd size. A file that is shorter or longer than that at the end, or is not the
 * `expected` file (device and inode from an earlier stat), is 'changed'.
 */
export async function readRegularFile(path: string, opts: { maxBytes: number; noFollow?: boolean; expected?: Stats }): Promise<Uint8Array> {
  const flags = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0) | (opts.noFollow ? constants.O_NOFOLLOW ?? 0 : 0);
  let handle;
  try {
    handle = await open(path, flags);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new FileReadProblem('missing', 'file not found');
    if (code === 'ELOOP' || code === 'ENXIO') throw new FileReadProblem('not-regular', NOT_REGULAR);
    throw new FileReadProblem('unreadable', code === 'EACCES' ? 'permission denied' : code ?? firstLine(e));
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) throw new FileReadProblem('not-regular', NOT_REGULAR);
    const { expected } = opts;
    if (expected && (stats.dev !== expected.dev || stats.ino !== expected.ino || stats.size !== expected.size)) {
      throw new FileReadProblem('changed', 'it changed after its size was checked');
    }
    if (stats.size > opts.maxBytes) throw new FileReadProblem('too-large', `is ${stats.size} bytes`, stats.size);
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(stats.size); // its own ArrayBuffer of exactly the file's size
    } catch {
      throw new FileReadProblem('no-memory', `${stats.size} bytes cannot be allocated`, stats.size);
    }
    let at = 0;
    while (at < bytes.length) {
      const { bytesRead } = await handle.read(bytes, at, Math.min(READ_CHUNK, bytes.length - at), at);
      if (bytesRead === 0) throw new FileReadProblem('changed', 'it became shorter while being read');
      at += bytesRead;
    }
    if ((await handle.read(new Uint8Array(1), 0, 1, at)).bytesRead !== 0) {
      throw new FileReadProblem('changed', 'it became longer while being read');
    }
    return bytes;
  } catch (e) {
    if (e instanceof FileReadProblem) throw e;
    throw new FileReadProblem('unreadable', (e as NodeJS.ErrnoException).code ?? firstLine(e));
  } finally {
    await handle.close();
  }
}
