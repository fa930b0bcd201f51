/**
 * Fuzzes parseTfjsModel in memory with the CLI fuzzer's mutations (test/helpers/model-mutations.ts)
 * and with weight data of every shape a caller might pass. Every call must return a model or
 * throw an ENormError with a model-description code and a one-line message (no control
 * characters, at most 500 characters); a parsed model must serialize (or throw an ENormError)
 * and parse again to as many layers and weights. The calls run in a child process
 * (fuzz-parse-child.ts), so a hang is a 15 s timeout, not a stuck test run.
 * ENORM_FUZZ_SEED replays a run; ENORM_FUZZ_PARSE_RUNS changes the number of cases (default 3,000).
 */
import fc from 'fast-check';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FuzzChild } from '../helpers/fuzz-cli-runner.js';
import type { ParseJob, ParseReply, Settled } from '../helpers/fuzz-parse-child.js';
import { WEIGHT_DATA_MODES } from '../helpers/fuzz-parse-input.js';
import { fuzzRuns, fuzzSeed, Histogram } from '../helpers/fuzz-stats.js';
import { caseArb } from '../helpers/fuzz-mutation-arbs.js';

const SEED = fuzzSeed();
const RUNS = fuzzRuns(3000, 'ENORM_FUZZ_PARSE_RUNS');
/** What a corrupt or unsupported model description may be refused with (not E_OPTION, E_OVERFLOW, E_STATE: no balancing happens here). */
const PARSE_CODES = new Set(['E_MODEL', 'E_SHAPE', 'E_LAYER_KIND', 'E_LAYOUT', 'E_WIDTH', 'E_GRAPH', 'E_TYPE', 'E_MEMORY', 'E_NONFINITE', 'E_ALIAS']);
const CONTROL = /[\p{Cc}\u2028\u2029]/u;

let child: FuzzChild<Omit<ParseJob, 'id'>, ParseReply>;
const outcomes = new Histogram();

/** What is wrong with one settled call (empty: a model, or a clean ENormError). */
function problems(step: string, s: Settled | undefined): string[] {
  if (!s || s.kind === 'returned') return [];
  if (s.kind === 'other') return [`${step} threw a non-ENormError: ${s.error}`];
  const bad: string[] = [];
  if (!PARSE_CODES.has(s.code)) bad.push(`${step} threw ${s.code}, not a model-description code`);
  if (s.message.includes('\n') || CONTROL.test(s.message)) bad.push(`${step}: message has line breaks or control characters: ${JSON.stringify(s.message.slice(0, 200))}`);
  if (s.message.length > 500) bad.push(`${step}: message is ${s.message.length} characters long`);
  return bad;
}

const messageClass = (s: Settled) => (s.kind === 'enorm'
  ? `${s.code}: ${s.message.replace(/'[^']*'/g, "'…'").replace(/"[^"]*"/g, '"…"').replace(/-?\d[\d.e+-]*/g, 'N').slice(0, 70)}`
  : s.kind);

beforeAll(() => {
  child = new FuzzChild(fileURLToPath(new URL('../helpers/fuzz-parse-child.ts', import.meta.url)));
});

afterAll(() => {
  child?.close();
  console.log(`tfjs-format fuzz: seed ${SEED} (ENORM_FUZZ_SEED=${SEED} replays it), ${outcomes.total} parse cases, ${child?.started ?? 0} child process(es)`);
  console.log(outcomes.format('parse outcomes'));
});

describe('parseTfjsModel on hostile model descriptions', () => {
  it(`${RUNS} mutated models: a model, or an ENormError with a clean one-line message`, async () => {
    let ran = 0;
    await fc.assert(
      fc.asyncProperty(caseArb, fc.constantFrom(...WEIGHT_DATA_MODES), async ({ seed, mutations }, weightData) => {
        ran++;
        const reply = await child.run({ seed, mutations, weightData });
        if (!('parse' in reply)) {
          outcomes.add(reply.kind);
          throw new Error(`the parser did not answer: ${JSON.stringify(reply).slice(0, 300)}`);
        }
        outcomes.add(messageClass(reply.parse));
        const bad = [...problems('parseTfjsModel', reply.parse), ...problems('serializeTfjsModel', reply.serialize), ...problems('parsing the serialized model', reply.reparse)];
        if (reply.parse.kind === 'returned' && reply.reparse?.kind === 'returned' && reply.reparse.detail !== reply.parse.detail) {
          bad.push(`the serialized model parses to ${reply.reparse.detail}, the original to ${reply.parse.detail}`);
        }
        if (bad.length) throw new Error(bad.join('; '));
      }),
      { numRuns: RUNS, seed: SEED, interruptAfterTimeLimit: 100_000, markInterruptAsFailure: false },
    );
    expect(ran, `only ${ran} of ${RUNS} cases ran within the time limit`).toBeGreaterThanOrEqual(RUNS);
  }, 180_000);
});
