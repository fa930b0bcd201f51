/**
 * An ENormError that nobody catches, in Node, from the built package (dist/, after `npm run build`).
 * Node prints the source line an uncaught error was thrown from; in a minified build that line is the
 * whole bundle (53 KB), so the Node builds are not minified and keep their names (scripts/bundle.mjs).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

const ROOT = new URL('../..', import.meta.url).pathname;
const MAX_LINES = 40;
const MAX_BYTES = 4096;

/** Runs `code` in a fresh Node from the repository root, where `enorm` resolves to the package itself (its exports, dist/). */
function runNode(code: string, type: 'module' | 'commonjs') {
  const r = spawnSync(process.execPath, [`--input-type=${type}`, '-e', code], { cwd: ROOT, encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr };
}

const cases: { entry: string; type: 'module' | 'commonjs'; code: string; errorCode: string; frame: RegExp }[] = [
  { entry: 'enorm (import)', type: 'module', code: "import { balance } from 'enorm'; await balance([{ kind: 'nope' }]);", errorCode: 'E_LAYER_KIND', frame: /at balance \(/ },
  // CommonJS frames read `Object.balance`: the function is called as a property of the exports object.
  { entry: 'enorm (require)', type: 'commonjs', code: "require('enorm').balance([{ kind: 'nope' }]);", errorCode: 'E_LAYER_KIND', frame: /at Object\.balance \(/ },
  { entry: 'enorm/node (import)', type: 'module', code: "import { ENorm } from 'enorm/node'; await ENorm.create([{ kind: 'dense', weight: new Float32Array(3), shape: [2, 2] }]);", errorCode: 'E_SHAPE', frame: /at ENorm\.create \(/ },
  { entry: 'enorm/model-io (require)', type: 'commonjs', code: "require('enorm/model-io').parseTfjsModel({ format: 'layers-model' }, new ArrayBuffer(0));", errorCode: 'E_MODEL', frame: /at Object\.parseTfjsModel \(/ },
];

describe('an uncaught ENormError from the Node builds', () => {
  beforeAll(() => {
    for (const file of ['dist/index.js', 'dist/cjs/index.js', 'dist/node.js', 'dist/cjs/model-io.js']) {
      if (!existsSync(join(ROOT, file))) throw new Error(`${file} is missing: run npm run build first`);
    }
  });

  for (const c of cases) {
    it(`${c.entry}: a short print naming ENormError, its code and readable frames`, () => {
      const { status, stderr } = runNode(c.code, c.type);
      expect(status, stderr).toBe(1);
      expect(Buffer.byteLength(stderr), stderr.slice(0, 2000)).toBeLessThan(MAX_BYTES);
      expect(stderr.split('\n').length, stderr).toBeLessThan(MAX_LINES);
      // `ENormError: <message>`, not a minified class name such as `o [ENormError]: ...`
      expect(stderr).toMatch(/^ENormError: \S/m);
      expect(stderr).toContain(`code: '${c.errorCode}'`);
      expect(stderr).toMatch(c.frame);
    });
  }
});
