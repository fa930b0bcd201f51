import { main } from './main.js';
import { reportUncaught } from './uncaught.js';

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (e: unknown) => { process.exitCode = reportUncaught(e, (t) => process.stderr.write(t)); },
);
