import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const example = (file: string, ...args: string[]) => run(process.execPath, ['--import', 'tsx', `examples/${file}`, ...args], { timeout: 120_000 });

describe('examples run as documented', () => {
  it('balance-resnet18 preserves the function', async () => {
    const { stdout } = await example('balance-resnet18.ts');
    expect(stdout).toMatch(/2880 units in 12 groups \(4 residual streams\)/);
    const change = Number(/largest output change: (\S+) of/.exec(stdout)?.[1]);
    expect(change).toBeLessThan(1e-5);
  });

  it('sgd-with-enorm trains (loss falls) with a cycle after every step', async () => {
    const { stdout } = await example('sgd-with-enorm.ts');
    const losses = [...stdout.matchAll(/loss (\S+),/g)].map((m) => Number(m[1]));
    expect(losses).toHaveLength(3);
    expect(losses[2]).toBeLessThan(losses[0]);
  });

  it('train-mnist trains with and without ENorm and reports both test accuracies', async () => {
    const { stdout } = await example('train-mnist.ts', '--depth', '3', '--width', '64', '--epochs', '2', '--train', '2000', '--lr', '0.05', '--quiet');
    const m = /test accuracy \(2000 held-out digits\): sgd (\S+)%, sgd\+enorm (\S+)%/.exec(stdout);
    expect(m).not.toBeNull();
    // a real training run: far above chance (10%)
    expect(Number(m![1])).toBeGreaterThan(40);
    expect(Number(m![2])).toBeGreaterThan(40);
  });
});
