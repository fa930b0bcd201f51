// The options live in the plan layer (src/plan/options.ts), which prepare() resolves; this path stays for
// the files that import it (cli/flags.ts, tfjs/*.ts).
export * from '../plan/options.js';
export { describeValue } from '../describe.js';
