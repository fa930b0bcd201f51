/**
 * Writes a CasePlan as a folder and checks what the CLI did with it.
 *
 *   <root>/secret.txt   7,919 bytes starting 'SECRET-TEXT': neither its size nor its text may reach an error message
 *   <root>/secret.bin   a valid output-bias shard: its bytes must never reach the balanced weights
 *   <root>/model/       model.json, weights.bin (a hard link to the seed's when unchanged), extras
 *   <root>/out          the -o folder: absent after a failure
 */
import { execFileSync } from 'node:child_process';
import { closeSync, constants, openSync } from 'node:fs';
import { link, mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readTfjsModelFile } from '../../src/model-io/files.js';
import type { CliOutcome } from './fuzz-cli-runner.js';
import { serializeTree } from './fuzz-json-tree.js';
import { ROOT, SECRET_BIN_NAME, SECRET_TEXT_NAME, type CasePlan } from './model-mutations.js';

export const SECRET_TEXT_SIZE = 7919;
export const SECRET_MARKER = 'SECRET-TEXT';
const secretText = (SECRET_MARKER + ' do not print me. '.repeat(500)).slice(0, SECRET_TEXT_SIZE);
export const MAX_ERROR_CHARS = 500;

/** model.json's bytes: the replaced file, or the tree with absolute paths pointing into `root`. */
export function modelJsonBytes(plan: CasePlan, root: string): Uint8Array {
  if (plan.text) return plan.text;
  return new TextEncoder().encode(serializeTree(plan.json).split(ROOT).join(JSON.stringify(root).slice(1, -1)));
}

export interface CaseFolder {
  root: string;
  modelJson: string;
  out: string;
  fifos: string[];
}

/** Writes the plan under `root` (which must not exist); `seedShard` is the seed's weights.bin, hard-linked when unchanged. */
export async function writeCase(root: string, plan: CasePlan, seedShard: string): Promise<CaseFolder> {
  const model = join(root, 'model');
  await mkdir(model, { recursive: true });
  await writeFile(join(root, SECRET_TEXT_NAME), secretText);
  await writeFile(join(root, SECRET_BIN_NAME), plan.secretBin);
  await writeFile(join(model, 'model.json'), modelJsonBytes(plan, root));
  if (plan.shardChanged) await writeFile(join(model, 'weights.bin'), plan.shard);
  else await link(seedShard, join(model, 'weights.bin'));
  for (const [name, bytes] of plan.shards) await writeFile(join(model, name), bytes);
  const fifos: string[] = [];
  for (const e of plan.extras) {
    const path = join(root, e.path);
    if (e.kind === 'dir') await mkdir(path, { recursive: true });
    else if (e.kind === 'file') await writeFile(path, e.bytes);
    else if (e.kind === 'symlink') await symlink(e.target, path).catch(() => undefined); // the same extra twice
    else {
      if (!fifos.includes(path)) execFileSync('mkfifo', [path]);
      fifos.push(path);
    }
  }
  return { root, modelJson: join(model, 'model.json'), out: join(root, 'out'), fifos };
}

/** Releases anyone still blocked opening a FIFO of the case (a writer that opens and closes: the reader sees EOF), then deletes it. */
export async function removeCase(c: CaseFolder): Promise<void> {
  for (const f of c.fifos) {
    try {
      closeSync(openSync(f, constants.O_WRONLY | constants.O_NONBLOCK));
    } catch {
      // ENXIO: no reader, nothing to release
    }
  }
  await rm(c.root, { recursive: true, force: true });
}

const exists = (p: string) => readdir(p).then(() => true, (e: NodeJS.ErrnoException) => e.code !== 'ENOENT');
const CONTROL = /[\p{Cc}\u2028\u2029]/u;

/**
 * Everything wrong with the outcome of `enorm balance <case> -o <out>`: an empty list when
 * main resolved with 0 (and the output reads back with nothing from outside the model
 * folder) or with 1 (one clean 'enorm: ' line that leaks nothing, and no output folder).
 */
export async function violations(o: CliOutcome, c: CaseFolder, plan: CasePlan): Promise<string[]> {
  if (o.kind === 'timeout') return [`no answer within ${o.ms} ms (a hang)`];
  if (o.kind === 'memory') return [`memory grew past ${o.rssMiB} MiB`];
  if (o.kind === 'crashed') return [`the process died (${o.how}): ${o.stderr.slice(-300)}`];
  const bad: string[] = o.stray.map((s) => s.split('\n')[0]);
  if (o.kind === 'rejected') return [...bad, `main rejected (internal error): ${o.error.split('\n').slice(0, 3).join(' | ')}`];
  if (o.code !== 0 && o.code !== 1) bad.push(`exit code ${o.code}`);
  if (o.code === 1) {
    const body = o.err.endsWith('\n') ? o.err.slice(0, -1) : o.err;
    if (!o.err.startsWith('enorm: ') || !o.err.endsWith('\n')) bad.push(`err is not one 'enorm: ' line: ${JSON.stringify(o.err.slice(0, 200))}`);
    if (body.includes('\n')) bad.push(`err has ${body.split('\n').length} lines`);
    if (CONTROL.test(body)) bad.push(`err holds control characters: ${JSON.stringify(body.slice(0, 200))}`);
    if (o.err.length > MAX_ERROR_CHARS) bad.push(`err is ${o.err.length} characters long`);
    if (body.includes(SECRET_MARKER)) bad.push('err shows the secret file\'s text');
    if (new RegExp(`(^|\\D)${SECRET_TEXT_SIZE}(\\D|$)`).test(body)) bad.push(`err tells the secret file's size: ${body.slice(0, 200)}`);
    if (await exists(c.out)) bad.push('the -o folder exists after a failure');
  }
  if (o.code === 0) bad.push(...(await outputViolations(c, plan)));
  return bad;
}

/** The written folder: model.json plus exactly the shards its manifest names (bare file names), nothing from outside the model folder, and it reads back. */
async function outputViolations(c: CaseFolder, plan: CasePlan): Promise<string[]> {
  const bad: string[] = [];
  const files = (await readdir(c.out).catch(() => [] as string[])).sort();
  let shards: string[] = [];
  try {
    const written = JSON.parse(await readFile(join(c.out, 'model.json'), 'utf8')) as { weightsManifest: { paths: string[] }[] };
    shards = written.weightsManifest.flatMap((g) => g.paths);
  } catch (e) {
    return [`the written model.json is not a tfjs model: ${(e as Error).message.slice(0, 200)}`];
  }
  const expected = ['model.json', ...shards].sort();
  if (files.join('\n') !== expected.join('\n')) bad.push(`-o folder holds [${files.join(', ')}], expected [${expected.join(', ')}]`);
  for (const name of shards) {
    if (!/^[\w.-]+$/.test(name) || name.startsWith('.')) {
      bad.push(`the written manifest names shard ${JSON.stringify(name)}, not a plain file in the folder`);
      continue;
    }
    const weights = await readFile(join(c.out, name)).catch(() => Buffer.alloc(0));
    if (weights.indexOf(plan.secretBin) >= 0) bad.push(`the balanced weights (${name}) contain secret.bin, a file outside the model folder`);
    if (weights.indexOf(SECRET_MARKER) >= 0) bad.push(`the balanced weights (${name}) contain secret.txt, a file outside the model folder`);
  }
  if (bad.length) return bad;
  try {
    await readTfjsModelFile(join(c.out, 'model.json'));
  } catch (e) {
    bad.push(`the output does not read back: ${(e as Error).message.slice(0, 200)}`);
  }
  return bad;
}

/** Histogram class of an outcome: exit code and the error's wording with names and numbers blanked. */
export function outcomeClass(o: CliOutcome, modelJson: string): string {
  if (o.kind !== 'resolved') return o.kind;
  if (o.code !== 1) return `exit ${o.code}`;
  const msg = o.err.replace(/^enorm: /, '').split(modelJson).join('<model>').replace(/'[^']*'/g, "'…'").replace(/"[^"]*"/g, '"…"')
    .replace(/-?\d[\d.e+-]*/g, 'N').replace(/\s+/g, ' ');
  return `exit 1: ${msg.slice(0, 70)}`;
}
