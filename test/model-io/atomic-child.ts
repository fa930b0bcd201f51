/**
 * Child process of the crash and concurrency tests (not a test file):
 *   node --import tsx test/model-io/atomic-child.ts <dir> <seed> kill <n>
 *     writes tinyModel(seed) to dir and SIGKILLs itself when the write reaches its n-th step;
 *   node --import tsx test/model-io/atomic-child.ts <dir> <seed> pause <step> <ready> <go>
 *     at <step> creates the file <ready>, then waits (at most 60 s) for the file <go> to exist.
 * Exits 0 after a completed write, 1 with the error's message on stderr after a failed one.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { writeTfjsModelFile } from '../../src/model-io/files.js';
import { tinyModel } from './files-fixture.js';

const [dir, seed, mode, at, ready, go] = process.argv.slice(2);
const sleeper = new Int32Array(new SharedArrayBuffer(4));
let count = 0;

function onStep(step: string): void {
  count++;
  if (mode === 'kill' && count === Number(at)) process.kill(process.pid, 'SIGKILL');
  if (mode === 'pause' && step === at) {
    writeFileSync(ready, String(process.pid));
    // Blocks this process, holding the write at this step, until the parent says go.
    for (let waited = 0; !existsSync(go); waited += 10) {
      if (waited > 60_000) process.exit(3);
      Atomics.wait(sleeper, 0, 0, 10);
    }
  }
}

writeTfjsModelFile(tinyModel(Number(seed)), dir, { onStep }).then(
  () => process.exit(0),
  (e: Error) => {
    process.stderr.write(`${e.message}\n`);
    process.exit(1);
  },
);
