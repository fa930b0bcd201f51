/**
 * Node file access for tfjs layers models: model.json plus the weight shards it names,
 * read from / written to a directory.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { ENormError } from '../errors.js';
import { parseTfjsModel, serializeTfjsModel, type TfjsModel } from './tfjs-format.js';

function oneLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0];
}

async function readBytes(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (e) {
    const why = (e as NodeJS.ErrnoException)?.code === 'ENOENT' ? 'file not found' : oneLine(e);
    throw new ENormError('E_MODEL', `${what} '${path}' cannot be read: ${why}`);
  }
}

/** The shard paths of a manifest, in order; malformed manifests are left for parseTfjsModel to report. */
function shardPaths(json: unknown): string[] {
  const manifest = (json as { weightsManifest?: unknown })?.weightsManifest;
  if (!Array.isArray(manifest)) return [];
  return manifest.flatMap((g: unknown) => {
    const paths = (g as { paths?: unknown })?.paths;
    return Array.isArray(paths) ? paths.filter((p): p is string => typeof p === 'string' && p !== '') : [];
  });
}

/** Reads model.json and the weight shards next to it (paths in the manifest are relative to it). */
export async function readTfjsModelFile(modelJsonPath: string): Promise<TfjsModel> {
  const text = (await readBytes(modelJsonPath, 'model file')).toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ENormError('E_MODEL', `${modelJsonPath}: not valid JSON (${oneLine(e)})`);
  }
  const dir = dirname(modelJsonPath);
  const shards: ArrayBuffer[] = [];
  for (const p of shardPaths(json)) {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(p)) {
      throw new ENormError('E_MODEL', `${modelJsonPath}: weight shard '${p}' is a URL; enorm reads local files only`);
    }
    const buf = await readBytes(resolve(dir, p), 'weight shard');
    // Copy out of Node's buffer pool into an ArrayBuffer of exactly the file's bytes.
    shards.push(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer);
  }
  return parseTfjsModel(json, shards, { source: modelJsonPath });
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Writes `dir/model.json` and `dir/weights.bin` (creating dir). Both are first written
 * to temporary names in dir and then renamed; on failure the temporaries are removed
 * and a weights.bin that was already replaced is restored. Returns the written paths.
 */
export async function writeTfjsModelFile(model: TfjsModel, dir: string): Promise<string[]> {
  const { modelJson, weightData } = serializeTfjsModel(model, 'weights.bin');
  const jsonPath = join(dir, 'model.json');
  const weightsPath = join(dir, 'weights.bin');
  const tag = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const tmpJson = join(dir, `.model.json.${tag}.tmp`);
  const tmpWeights = join(dir, `.weights.bin.${tag}.tmp`);
  const backup = join(dir, `.weights.bin.${tag}.bak`);
  let weightsState: 'untouched' | 'backed-up' | 'replaced-new' | 'replaced-backed-up' = 'untouched';
  try {
    await mkdir(dir, { recursive: true });
    await writeFile(tmpWeights, new Uint8Array(weightData), { flag: 'wx' });
    await writeFile(tmpJson, JSON.stringify(modelJson), { flag: 'wx' });
    // weights.bin first: model.json never names weights that are not there yet.
    if (await exists(weightsPath)) {
      await rename(weightsPath, backup);
      weightsState = 'backed-up';
    }
    await rename(tmpWeights, weightsPath);
    weightsState = weightsState === 'backed-up' ? 'replaced-backed-up' : 'replaced-new';
    await rename(tmpJson, jsonPath);
    if (weightsState === 'replaced-backed-up') await rm(backup, { force: true });
  } catch (e) {
    await rm(tmpJson, { force: true }).catch(() => undefined);
    await rm(tmpWeights, { force: true }).catch(() => undefined);
    if (weightsState === 'replaced-new') await rm(weightsPath, { force: true }).catch(() => undefined);
    if (weightsState === 'backed-up' || weightsState === 'replaced-backed-up') await rename(backup, weightsPath).catch(() => undefined);
    throw new ENormError('E_MODEL', `cannot write the model to '${dir}': ${oneLine(e)}`);
  }
  return [jsonPath, weightsPath];
}
