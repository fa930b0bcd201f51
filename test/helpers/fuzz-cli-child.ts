/**
 * Child process of the CLI fuzzer: runs `main(argv, io)` for each job it is sent and sends
 * back how the promise settled, with everything main wrote. Runs under `node --import tsx`.
 * A child that hangs or eats memory is killed by the parent (fuzz-cli-runner.ts) and replaced.
 */
import { main } from '../../src/cli/main.js';

interface Job { id: number; argv: string[] }

let stray: string[] = []; // rejections and exceptions nobody awaited, reported with the running job
process.on('unhandledRejection', (e) => { stray.push(`unhandled rejection: ${describe(e)}`); });
process.on('uncaughtException', (e) => { stray.push(`uncaught exception: ${describe(e)}`); });

function describe(e: unknown): string {
  return e instanceof Error ? (e.stack ?? `${e.name}: ${e.message}`) : String(e);
}

process.on('message', (job: Job) => {
  let out = '';
  let err = '';
  const io = { out: (t: string) => { out += t; }, err: (t: string) => { err += t; } };
  stray = [];
  main(job.argv, io).then(
    (code) => ({ kind: 'resolved' as const, code }),
    (e: unknown) => ({ kind: 'rejected' as const, error: describe(e) }),
  ).then((settled) => {
    // let stray rejections of this job surface before answering
    setImmediate(() => process.send!({ id: job.id, ...settled, out, err, stray }));
  });
});

process.send!({ ready: true });
