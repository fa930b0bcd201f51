/**
 * The package as users get it: `npm pack`, install the tarball into an empty project, and run the
 * README's example there in Node, Deno, Bun and headless Chromium (the README's browser snippet,
 * served over HTTP), and its worker in workerd. Every runtime must print the same energies, to the
 * last digit.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, extname, join, normalize } from 'node:path';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { chromium } from 'playwright';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../runtimes/chromium.ts';

const run = promisify(execFile);
const ROOT = new URL('../..', import.meta.url).pathname;
const bin = (name: string) => join(ROOT, 'node_modules', '.bin', name);

/** The fenced block that follows `<!-- readme-example: NAME -->` in README.md. */
export function readmeExample(readme: string, name: string): string {
  const marker = `<!-- readme-example: ${name} -->`;
  const at = readme.indexOf(marker);
  if (at < 0) throw new Error(`README.md has no ${marker}`);
  const block = /```[a-z]*\n([\s\S]*?)```/.exec(readme.slice(at + marker.length));
  if (!block) throw new Error(`README.md: no code block after ${marker}`);
  return block[1];
}

const MIME: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.json': 'application/json', '.map': 'application/json', '.wasm': 'application/wasm' };

/** A static file server for the project directory, on a free loopback port. */
function serve(dir: string): Promise<Server> {
  const server = createServer((req, res) => {
    const asked = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)).replace(/^(\.\.[/\\])+/, '');
    const path = asked.endsWith('/') ? `${asked}index.html` : asked;
    if (path === '/favicon.ico') return void res.writeHead(204).end(); // asked by the browser, not the snippet
    try {
      const body = readFileSync(join(dir, path));
      res.writeHead(200, { 'content-type': MIME[extname(path)] ?? 'application/octet-stream' }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** A free loopback port (listen on 0, read it, close). */
async function freePort(): Promise<number> {
  const server = await serve('/nonexistent');
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A workerd config, written next to `dir`, serving its ES modules and .wasm files (the entry first) on `port`. */
function workerdConfig(dir: string, entry: string, port: number): string {
  const files = readdirSync(dir).filter((f) => f.endsWith('.js') || f.endsWith('.wasm')).sort((a, b) => Number(b === entry) - Number(a === entry));
  // embed paths are relative to the config file
  const modules = files.map((f) => `(name = "${f}", ${f.endsWith('.wasm') ? 'wasm' : 'esModule'} = embed "${basename(dir)}/${f}")`);
  return `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [(name = "main", worker = .worker)],
  sockets = [(name = "http", address = "127.0.0.1:${port}", http = (), service = "main")],
);
const worker :Workerd.Worker = (modules = [${modules.join(', ')}], compatibilityDate = "2026-11-01");
`;
}

describe('the packed tarball, installed into an empty project', () => {
  let project = '';
  let nodeOutput = '';

  beforeAll(async () => {
    const packDir = mkdtempSync(join(tmpdir(), 'enorm-pack-'));
    const { stdout } = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', packDir], { cwd: ROOT });
    const [{ filename, files }] = JSON.parse(stdout) as { filename: string; files: { path: string }[] }[];
    const paths = files.map((f) => f.path);
    for (const want of ['dist/index.js', 'dist/cjs/index.js', 'dist/index.workerd.js', 'dist/enorm.simd.wasm', 'dist/browser/enorm.js', 'dist/index.d.ts']) {
      if (!paths.includes(want)) throw new Error(`the tarball lacks ${want}: run npm run build first`);
    }
    expect(paths.filter((p) => /^(src|test|bench|assembly)\//.test(p))).toEqual([]);

    project = mkdtempSync(join(tmpdir(), 'enorm-readme-'));
    writeFileSync(join(project, 'package.json'), `${JSON.stringify({ name: 'readme-example', private: true, type: 'module' })}\n`);
    await run('npm', ['install', join(packDir, filename), '--no-audit', '--no-fund', '--prefer-offline'], { cwd: project });
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    writeFileSync(join(project, 'example.mjs'), readmeExample(readme, 'example.mjs'));
    writeFileSync(join(project, 'index.html'), readmeExample(readme, 'index.html'));
    nodeOutput = (await run('node', ['example.mjs'], { cwd: project })).stdout;
  });

  it('Node prints the energies and a preserved function', () => {
    expect(nodeOutput).toMatch(/^energy \d+\.\d+ -> \d+\.\d+ in \d+ cycles \(simd\)\nlargest output change \d/);
    const [, before, after] = /energy ([\d.]+) -> ([\d.]+)/.exec(nodeOutput)!;
    expect(Number(after)).toBeLessThan(Number(before));
    expect(Number(/change ([\d.e-]+)/.exec(nodeOutput)![1])).toBeLessThan(1e-5);
  });

  it('CommonJS require gives the same energies', async () => {
    const script = "const { balance, mlp } = require('enorm'); balance(mlp({ sizes: [784, 256, 128, 10], seed: 1 })).then((r) => console.log(`energy ${r.energyBefore} -> ${r.energyAfter} in ${r.cycles} cycles (${r.backend})`));";
    const { stdout } = await run('node', ['-e', script], { cwd: project });
    expect(stdout).toBe(nodeOutput.split('\n')[0] + '\n');
  });

  it('Deno prints exactly the same', async () => {
    const { stdout } = await run(bin('deno'), ['run', 'example.mjs'], { cwd: project });
    expect(stdout).toBe(nodeOutput);
  });

  it('Bun prints exactly the same', async () => {
    const { stdout } = await run(bin('bun'), ['example.mjs'], { cwd: project });
    expect(stdout).toBe(nodeOutput);
  });

  it('workerd runs the README worker, bundled by esbuild under the workerd condition, with the same energies', async () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    writeFileSync(join(project, 'worker.mjs'), readmeExample(readme, 'worker.mjs'));
    const out = join(project, 'worker-dist');
    await build({ entryPoints: [join(project, 'worker.mjs')], bundle: true, format: 'esm', outdir: out, conditions: ['workerd', 'worker', 'browser'], loader: { '.wasm': 'copy' }, logLevel: 'silent' });
    const wasm = readdirSync(out).filter((f) => f.endsWith('.wasm'));
    expect(wasm).toHaveLength(2); // the workerd build imports both .wasm files; the inlined build would bring none
    const port = await freePort();
    writeFileSync(join(project, 'workerd.capnp'), workerdConfig(out, 'worker.js', port));
    const workerd = spawn(bin('workerd'), ['serve', join(project, 'workerd.capnp')], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    workerd.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      let body: string | undefined;
      await expect.poll(async () => {
        body = await fetch(`http://127.0.0.1:${port}/`).then((r) => r.text(), () => undefined);
        return body !== undefined || workerd.exitCode !== null;
      }, { timeout: 60_000, interval: 200 }).toBe(true);
      expect(stderr, stderr).not.toMatch(/error/i);
      expect(workerd.exitCode, stderr).toBe(null);
      expect(body).toBe(nodeOutput.split('\n')[0]);
    } finally {
      workerd.kill();
    }
  });

  describe('Chromium, the README browser snippet', () => {
    let server: Server | undefined;
    afterAll(() => server?.close());

    it('prints exactly the same in the console', async () => {
      server = await serve(project);
      const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true });
      try {
        const page = await browser.newPage();
        const lines: string[] = [];
        const errors: string[] = [];
        page.on('console', (m) => (m.type() === 'log' ? lines : errors).push(m.text()));
        page.on('pageerror', (e) => errors.push(e.message));
        page.on('response', (r) => r.ok() || errors.push(`${r.status()} ${r.url()}`));
        await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
        const want = nodeOutput.trimEnd().split('\n');
        await expect.poll(() => lines.length + errors.length, { timeout: 60_000 }).toBeGreaterThanOrEqual(want.length);
        expect(errors).toEqual([]);
        expect(lines).toEqual(want);
      } finally {
        await browser.close();
      }
    });
  });
});
