/**
 * Child process of the in-memory parser fuzzer: rebuilds each case from its seed index and
 * mutation list (small messages), calls parseTfjsModel, and for a parsed model also
 * serializeTfjsModel and a second parse; reports how each settled. Runs under node --import tsx.
 */
import { isENormError } from '../../src/errors.js';
import { parseTfjsModel, serializeTfjsModel } from '../../src/model-io/tfjs/index.js';
import { parseInput, type WeightDataMode } from './fuzz-parse-input.js';
import { loadSeeds } from './fuzz-seeds.js';
import { applyMutations, type Mutation } from './model-mutations.js';

export interface ParseJob { id: number; seed: number; mutations: Mutation[]; weightData: WeightDataMode }
export type Settled = { kind: 'returned'; detail: string } | { kind: 'enorm'; code: string; message: string } | { kind: 'other'; error: string };
export interface ParseReply { id: number; parse: Settled; serialize?: Settled; reparse?: Settled }

function settle<T>(f: () => T, describe: (v: T) => string): [Settled, T | undefined] {
  try {
    const v = f();
    return [{ kind: 'returned', detail: describe(v) }, v];
  } catch (e) {
    if (isENormError(e)) return [{ kind: 'enorm', code: e.code, message: e.message }, undefined];
    return [{ kind: 'other', error: e instanceof Error ? (e.stack ?? String(e)).split('\n').slice(0, 4).join(' | ') : String(e) }, undefined];
  }
}

const seeds = await loadSeeds();
process.on('message', (job: ParseJob) => {
  const plan = applyMutations(seeds[job.seed], job.mutations);
  const { modelJson, weightData } = parseInput(plan, job.weightData);
  const reply: ParseReply = { id: job.id, parse: { kind: 'other', error: 'not run' } };
  const [parsed, model] = settle(() => parseTfjsModel(modelJson, weightData as ArrayBuffer), (m) => `${m.network.length} layers, ${m.weights.length} weights`);
  reply.parse = parsed;
  if (model) {
    const [serialized, out] = settle(() => serializeTfjsModel(model), (o) => `${o.weightData.byteLength} bytes`);
    reply.serialize = serialized;
    if (out) reply.reparse = settle(() => parseTfjsModel(out.modelJson, out.weightData), (m) => `${m.network.length} layers, ${m.weights.length} weights`)[0];
  }
  process.send!(reply);
});
process.send!({ ready: true });
