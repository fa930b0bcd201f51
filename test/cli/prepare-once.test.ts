import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';

// Counts the validations a CLI run makes, running the real validator each time.
const validations = vi.hoisted(() => ({ count: 0 }));
vi.mock('../../src/network/validate.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/network/validate.js')>();
  return { ...real, validateLayers: (...args: Parameters<typeof real.validateLayers>) => { validations.count++; return real.validateLayers(...args); } };
});

const { main } = await import('../../src/cli/main.js');

describe('enorm balance', () => {
  it('reads, validates and plans the model once (prepare), then balances what it planned', async () => {
    const out = join(await mkdtemp(join(tmpdir(), 'enorm-once-')), 'balanced');
    let err = '';
    validations.count = 0;
    const code = await main(['balance', 'models/mnist-mlp/model.json', '-o', out, '--samples', '4', '--json'], { out: () => {}, err: (t) => { err += t; } });
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(validations.count).toBe(1);
  });
});
