import { main } from './main.js';

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (e: unknown) => {
    // Not an expected error: a bug. Show everything.
    console.error('enorm: internal error, please report it:', e);
    process.exitCode = 70;
  },
);
