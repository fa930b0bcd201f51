/**
 * Runs CLI cases in a long-lived child process (fuzz-cli-child.ts) so that a case which
 * hangs (a FIFO open blocks a libuv thread; a sync loop blocks the event loop) or allocates
 * without bound (/dev/zero read to the end) is detected and killed without taking the test
 * runner, or the machine, down with it.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export type CliOutcome =
  | { kind: 'resolved'; code: number; out: string; err: string; stray: string[] }
  | { kind: 'rejected'; error: string; out: string; err: string; stray: string[] }
  | ChildFailure;

const CHILD = fileURLToPath(new URL('./fuzz-cli-child.ts', import.meta.url));
const REPO = fileURLToPath(new URL('../../', import.meta.url));

/** Resident memory of a process in MiB (Linux /proc), 0 when it cannot be read. */
function rssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** How a job in a fuzz child ended when the child did not answer. */
export type ChildFailure = { kind: 'timeout'; ms: number } | { kind: 'memory'; rssMiB: number } | { kind: 'crashed'; how: string; stderr: string };

/**
 * A long-lived `node --import tsx <file>` child that answers `{ id, ...job }` messages with
 * `{ id, ...reply }`; a job past the time limit, or a child past the memory limit, is killed
 * (a fresh child serves the next job).
 */
export class FuzzChild<Job extends object, Reply> {
  private child?: ChildProcess;
  private ready?: Promise<void>;
  private stderr = '';
  private nextId = 1;
  /** Children started so far (1 + the number of kills). */
  started = 0;

  constructor(private readonly file: string, private readonly limits = { timeoutMs: 15_000, rssMiB: 1536 }) {}

  private start(): Promise<void> {
    this.stderr = '';
    const child = fork(this.file, [], { cwd: REPO, execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'pipe', 'ipc'], serialization: 'advanced' });
    child.stderr!.on('data', (d: Buffer) => { this.stderr = (this.stderr + d.toString()).slice(-4000); });
    this.child = child;
    this.started++;
    this.ready = new Promise((resolve, reject) => {
      const onMessage = (m: { ready?: boolean }) => { if (m.ready) { child.off('message', onMessage); resolve(); } };
      child.on('message', onMessage);
      child.once('exit', (code, signal) => reject(new Error(`fuzz child exited before it was ready (${code ?? signal}): ${this.stderr}`)));
    });
    return this.ready;
  }

  private kill(): void {
    this.child?.kill('SIGKILL');
    this.child = undefined;
    this.ready = undefined;
  }

  async run(job: Job): Promise<Reply | ChildFailure> {
    if (!this.child) await this.start();
    else await this.ready;
    const child = this.child!;
    const id = this.nextId++;
    return new Promise<Reply | ChildFailure>((resolve) => {
      const t0 = Date.now();
      const finish = (o: Reply | ChildFailure, killChild: boolean) => {
        clearInterval(watch);
        clearTimeout(timer);
        child.off('message', onMessage);
        child.off('exit', onExit);
        if (killChild) this.kill();
        resolve(o);
      };
      const onMessage = (m: { id?: number }) => {
        if (m.id === id) finish(m as Reply, false);
      };
      const onExit = (code: number | null, signal: string | null) => {
        this.child = undefined;
        finish({ kind: 'crashed', how: `exit ${code ?? signal}`, stderr: this.stderr }, false);
      };
      const watch = setInterval(() => {
        const rss = rssMiB(child.pid!);
        if (rss > this.limits.rssMiB) finish({ kind: 'memory', rssMiB: Math.round(rss) }, true);
      }, 20);
      const timer = setTimeout(() => finish({ kind: 'timeout', ms: Date.now() - t0 }, true), this.limits.timeoutMs);
      child.on('message', onMessage);
      child.on('exit', onExit);
      child.send({ id, ...job });
    });
  }

  close(): void {
    this.kill();
  }
}

/** `main(argv)` in a fuzz child (fuzz-cli-child.ts). */
export class CliRunner extends FuzzChild<{ argv: string[] }, CliOutcome> {
  constructor(limits?: { timeoutMs: number; rssMiB: number }) {
    super(CHILD, limits);
  }

  main(argv: string[]): Promise<CliOutcome> {
    return this.run({ argv });
  }
}

/** `node --import tsx src/cli/bin.ts <args>` as a real process, with the same time and memory limits. */
export function runBinary(args: string[], limits = { timeoutMs: 15_000, rssMiB: 1536 }): Promise<CliOutcome> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/bin.ts', ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    let verdict: CliOutcome | undefined;
    const stop = (o: CliOutcome) => { verdict ??= o; child.kill('SIGKILL'); };
    const t0 = Date.now();
    const watch = setInterval(() => {
      const rss = rssMiB(child.pid!);
      if (rss > limits.rssMiB) stop({ kind: 'memory', rssMiB: Math.round(rss) });
    }, 20);
    const timer = setTimeout(() => stop({ kind: 'timeout', ms: Date.now() - t0 }), limits.timeoutMs);
    child.on('close', (code, signal) => {
      clearInterval(watch);
      clearTimeout(timer);
      if (verdict) resolve(verdict);
      else if (code === null) resolve({ kind: 'crashed', how: `signal ${signal}`, stderr: err });
      else resolve({ kind: 'resolved', code, out, err, stray: [] });
    });
  });
}
