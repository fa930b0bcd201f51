/** What the in-memory fuzzer hands parseTfjsModel for a CasePlan: the parsed model.json and some form of weight data. */
import { modelJsonBytes } from './fuzz-case-files.js';
import { ROOT, SECRET_BIN_NAME, type CasePlan } from './model-mutations.js';

/** 'concat': all shards in one ArrayBuffer; 'per-path': one per manifest path; the rest are what a careless caller passes. */
export const WEIGHT_DATA_MODES = ['concat', 'per-path', 'per-path', 'per-path', 'null', 'string', 'empty-list', 'list-of-null', 'shared', 'view', 'odd-view', 'too-many'] as const;
export type WeightDataMode = (typeof WEIGHT_DATA_MODES)[number];

const ab = (b: Uint8Array): ArrayBuffer => b.slice().buffer;
const OUTSIDE = new Set([`../${SECRET_BIN_NAME}`, `${ROOT}/${SECRET_BIN_NAME}`, 'bias.bin', 'up/secret.bin', `sub/../../${SECRET_BIN_NAME}`]);

/** Bytes for one manifest path: the main shard, an extra shard, the secret (the in-memory API has no folders), or nothing. */
function bytesFor(plan: CasePlan, path: unknown): Uint8Array {
  if (path === 'weights.bin') return plan.shard;
  if (typeof path === 'string' && plan.shards.has(path)) return plan.shards.get(path)!;
  if (typeof path === 'string' && OUTSIDE.has(path)) return plan.secretBin;
  return new Uint8Array(0);
}

function manifestPaths(json: unknown): unknown[] {
  const m = (json as { weightsManifest?: unknown } | null)?.weightsManifest;
  if (!Array.isArray(m)) return ['weights.bin'];
  return m.flatMap((g: unknown) => ((g as { paths?: unknown })?.paths instanceof Array ? (g as { paths: unknown[] }).paths : []));
}

export function parseInput(plan: CasePlan, mode: WeightDataMode): { modelJson: unknown; weightData: unknown } {
  const text = new TextDecoder().decode(modelJsonBytes(plan, '/fuzz-root'));
  let modelJson: unknown;
  try {
    modelJson = JSON.parse(text);
  } catch {
    modelJson = text; // not JSON: the parser gets the string, which is no model object
  }
  const paths = manifestPaths(modelJson);
  const parts = paths.map((p) => bytesFor(plan, p));
  const all = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  parts.reduce((at, p) => (all.set(p, at), at + p.byteLength), 0);
  const weightData: Record<WeightDataMode, () => unknown> = {
    concat: () => ab(all),
    'per-path': () => parts.map(ab),
    null: () => null,
    string: () => 'weights.bin',
    'empty-list': () => [],
    'list-of-null': () => paths.map(() => null),
    shared: () => {
      const s = new SharedArrayBuffer(all.byteLength);
      new Uint8Array(s).set(all);
      return s;
    },
    view: () => new Uint8Array(ab(all)),
    'odd-view': () => {
      const backing = new Uint8Array(all.byteLength + 3);
      backing.set(all, 1);
      return backing.subarray(1, 1 + all.byteLength);
    },
    'too-many': () => [...parts.map(ab), new ArrayBuffer(8)],
  };
  return { modelJson, weightData: weightData[mode]() };
}
