/**
 * Fuzzes `enorm balance model.json -o dir` with model folders mutated from two real seeds
 * (test/helpers/model-mutations.ts lists the mutations). Every case must end in one of:
 *   exit 0: the -o folder holds model.json and the shards it names, reads back, and holds no
 *           byte of the files next to the model folder;
 *   exit 1: stderr is one 'enorm: ' line (no control characters, at most 500 characters, not
 *           the size or text of a file outside the model folder) and the -o folder does not exist.
 * main() runs in a child process (fuzz-cli-runner.ts) so hangs and runaway memory are caught.
 * ENORM_FUZZ_SEED replays a run (the seed is printed, and by fast-check on failure);
 * ENORM_FUZZ_RUNS changes the number of cases (default 1,000).
 */
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, truncate, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeCase, violations, outcomeClass, writeCase, type CaseFolder } from '../helpers/fuzz-case-files.js';
import { CliRunner, runBinary, type CliOutcome } from '../helpers/fuzz-cli-runner.js';
import { loadSeeds, type Seed } from '../helpers/fuzz-seeds.js';
import { fuzzRuns, fuzzSeed, Histogram } from '../helpers/fuzz-stats.js';
import { caseArb } from '../helpers/fuzz-mutation-arbs.js';
import { applyMutations, type CasePlan, type Mutation } from '../helpers/model-mutations.js';

const SEED = fuzzSeed();
const RUNS = fuzzRuns(1000);
const MIB = 1024 * 1024;

let seeds: Seed[];
let seedShards: string[];
let root: string;
let runner: CliRunner;
let caseCount = 0;
const outcomes = new Histogram();
const applied = new Histogram();

const balanceArgs = (c: CaseFolder) => ['balance', c.modelJson, '-o', c.out, '--samples', '4'];

/** One case: its folder, the CLI's outcome, and everything wrong with it. */
async function runCase(plan: CasePlan, edit?: (c: CaseFolder) => Promise<void>, args = balanceArgs): Promise<{ o: CliOutcome; bad: string[] }> {
  const c = await writeCase(join(root, `case-${++caseCount}`), plan, seedShards[seeds.findIndex((s) => s.name === plan.seed)]);
  try {
    await edit?.(c);
    const o = await runner.main(args(c));
    outcomes.add(outcomeClass(o, c.modelJson));
    return { o, bad: await violations(o, c, plan) };
  } finally {
    await removeCase(c);
  }
}

function summary(o: CliOutcome): string {
  if (o.kind === 'resolved') return `exit ${o.code}, err ${JSON.stringify(o.err.slice(0, 300))}`;
  if (o.kind === 'rejected') return `rejected: ${o.error.split('\n').slice(0, 4).join(' | ')}`;
  return JSON.stringify(o).slice(0, 300);
}

beforeAll(async () => {
  seeds = await loadSeeds();
  root = await mkdtemp(join(tmpdir(), 'enorm-fuzz-'));
  await mkdir(join(root, 'seeds'));
  seedShards = await Promise.all(seeds.map(async (s) => {
    const path = join(root, 'seeds', `${s.name}.bin`);
    await writeFile(path, s.shard);
    return path;
  }));
  runner = new CliRunner();
});

afterAll(async () => {
  runner?.close();
  if (root) await rm(root, { recursive: true, force: true });
  console.log(`model-file fuzz: seed ${SEED} (ENORM_FUZZ_SEED=${SEED} replays it), ${caseCount} CLI cases, ${runner?.started ?? 0} child process(es)`);
  console.log(outcomes.format('outcomes'));
  console.log(applied.format('mutations applied'));
});

describe('enorm balance on hostile model folders', () => {
  it('the unmutated seeds balance (exit 0, output reads back)', async () => {
    for (const seed of seeds) {
      const { o, bad } = await runCase(applyMutations(seed, []));
      expect(bad, summary(o)).toEqual([]);
      expect(o.kind === 'resolved' && o.code, summary(o)).toBe(0);
    }
  });

  it(`${RUNS} mutated model folders: exit 0 with a clean output, or exit 1 with one clean line and nothing written`, async () => {
    console.log(`model-file fuzz: seed ${SEED}, ${RUNS} cases`);
    let ran = 0;
    await fc.assert(
      fc.asyncProperty(caseArb, async ({ seed, mutations }) => {
        ran++;
        const plan = applyMutations(seeds[seed], mutations);
        for (const kind of plan.applied) applied.add(kind);
        const { o, bad } = await runCase(plan);
        if (bad.length) throw new Error(`${bad.join('; ')}\n  outcome: ${summary(o)}`);
      }),
      // Shrinking a hang costs 15 s a step: the time limit ends it with the smallest case found so far.
      { numRuns: RUNS, seed: SEED, interruptAfterTimeLimit: 150_000, markInterruptAsFailure: false },
    );
    expect(ran, `only ${ran} of ${RUNS} cases ran within the time limit`).toBeGreaterThanOrEqual(RUNS);
  }, 240_000);

  const conv = () => seeds[1];
  const special: { name: string; edit: (c: CaseFolder) => Promise<void>; args?: (c: CaseFolder) => string[] }[] = [
    { name: 'model.json is a 600 MB (sparse) file', edit: (c) => truncate(c.modelJson, 600 * MIB) },
    { name: 'the shard is a 600 MB (sparse) file', edit: async (c) => { await unlink(join(c.root, 'model/weights.bin')); await writeFile(join(c.root, 'model/weights.bin'), ''); await truncate(join(c.root, 'model/weights.bin'), 600 * MIB); } },
    { name: 'model.json is a FIFO nobody writes', edit: async (c) => { await unlink(c.modelJson); c.fifos.push(c.modelJson); execFileSync('mkfifo', [c.modelJson]); } },
    { name: 'model.json is a directory', edit: async (c) => { await unlink(c.modelJson); await mkdir(c.modelJson); } },
    { name: 'the model argument is /dev/zero', edit: async () => undefined, args: (c) => ['balance', '/dev/zero', '-o', c.out, '--samples', '4'] },
    { name: 'the model argument is /dev/urandom', edit: async () => undefined, args: (c) => ['balance', '/dev/urandom', '-o', c.out, '--samples', '4'] },
  ];
  it.each(special)('$name: exit 1, one clean line, nothing written', async ({ edit, args }) => {
    const { o, bad } = await runCase(applyMutations(conv(), []), edit, args);
    expect(bad, summary(o)).toEqual([]);
    expect(o.kind === 'resolved' && o.code, summary(o)).toBe(1);
  }, 60_000);
});

describe('the enorm binary on hostile model folders (real processes)', () => {
  const cases: { name: string; mutations: Mutation[] }[] = [
    { name: 'a truncated shard', mutations: [{ kind: 'shard-bytes', op: 'truncate', at: 1000, value: 0, bytes: [0] }] },
    { name: "class_name 'constructor'", mutations: [{ kind: 'proto-word', word: 'constructor', target: 'class_name', at: 1, value: null }] },
    { name: 'a named field nested 100,000 arrays deep', mutations: [{ kind: 'deep', at: 3, onlyNamedKeys: true, depth: 100_000, shape: 'array' }] },
    { name: 'a FIFO as shard', mutations: [{ kind: 'shard-path', at: 0, target: 'fifo' }] },
    { name: '/dev/zero as shard', mutations: [{ kind: 'shard-path', at: 0, target: '/dev/zero' }] },
    { name: 'the output bias read through a symlink to a file outside the folder', mutations: [{ kind: 'exfil', via: 'symlink' }] },
  ];
  it.each(cases)('$name: exit 0 or 1, stderr one line, no stack trace', async ({ mutations }) => {
    const plan = applyMutations(seeds[1], mutations);
    expect(plan.applied).toHaveLength(mutations.length);
    const c = await writeCase(join(root, `process-${++caseCount}`), plan, seedShards[1]);
    try {
      const o = await runBinary(balanceArgs(c));
      outcomes.add(`process ${outcomeClass(o, c.modelJson)}`);
      expect(await violations(o, c, plan), summary(o)).toEqual([]);
      if (o.kind === 'resolved') expect(o.err).not.toMatch(/\n\s+at /);
    } finally {
      await removeCase(c);
    }
  }, 60_000);
});
