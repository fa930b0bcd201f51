// The step profiler end to end on a small net: one line per kernel and one for the step, the kernel
// replacements named, BN's Tile listed (the gradient tiles to the batch), shares of the step.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const profile = async (...args: string[]) => {
  const { stdout } = await run('npx', ['tsx', 'bench/train-profile.ts', '--depth', '1', '--width', '16', '--steps', '2', '--json', ...args]);
  return stdout.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
};

describe('bench/train-profile.ts', () => {
  it('lists the kernels of a BN step with their time, calls and share, then the step', async () => {
    const rows = await profile('--norm', 'bn');
    const step = rows.at(-1)!;
    expect(step.kernel).toBe('step (median)');
    expect(step.ms as number).toBeGreaterThan(0);
    const kernels = rows.slice(0, -1);
    const names = kernels.map((r) => r.kernel);
    expect(names).toEqual(expect.arrayContaining(['BatchMatMul', '_FusedMatMul', 'Tile']));
    const matmuls = kernels.find((r) => r.kernel === 'BatchMatMul')!;
    // 3 dense layers, each a weight gradient and an input gradient: tfjs takes the first layer's too, which nothing uses.
    expect(matmuls.calls).toBe(6);
    for (const r of kernels) {
      expect(r).toMatchObject({ depth: 1, width: 16, norm: 'bn', matmul: 'transposed-copy', tile: 'row-copy' });
      expect(r.share as number).toBeGreaterThanOrEqual(0);
    }
    expect(kernels.map((r) => r.ms as number)).toEqual(kernels.map((r) => r.ms as number).sort((a, b) => b - a));
  }, 120_000);

  it("says when tfjs's own kernels ran", async () => {
    const rows = await profile('--tfjs-matmul', '--tfjs-tile');
    expect(rows[0]).toMatchObject({ norm: 'none', matmul: 'tfjs', tile: 'tfjs' });
  }, 120_000);
});
