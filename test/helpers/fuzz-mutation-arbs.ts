/** fast-check arbitraries for the model-file mutations of model-mutations.ts. */
import fc from 'fast-check';
import { ROOT, type Mutation } from './model-mutations.js';

const PROTO_WORDS = ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf', 'prototype', 'isPrototypeOf', '__defineGetter__'] as const;
const BAD_NUMBERS = ['1e400', '-1e400', '1e-400', '4.9e-324', '-1', '-0', '0', '0.5', '2.5', '1e7', '1e9', '1e15', '9007199254740993',
  '4294967296', '2147483648', '1e308', '"NaN"', '"Infinity"', '"3"', 'null', 'true', '[3]', '[]', '{}'] as const;
const BATCH_SHAPES = [[null, 1e7], [null, 1e9], [null, 512, 512, 3], [null, 0], [null, -1], [null, 2.5], [null, null], [null], [], [1, 784],
  [null, 784, 1], [null, 8, 8], [null, 8, 8, 3e6], [null, 65536, 65536, 3], 'x'] as const;
const SHARD_PATHS = ['../secret.txt', `${ROOT}/secret.txt`, '/dev/zero', '/dev/urandom', '/dev/null', 'fifo', 'dir', 'link-out', 'dangling',
  'http://example.com/weights.bin', 'file:///etc/passwd', 'data:application/octet-stream;base64,AAAA', '', '.', './', 'weights.bin/',
  'weights.bin\u0000x', 'a'.repeat(5000), '/proc/self/mem', '~/weights.bin', 'C:\\weights.bin', '\\\\server\\share\\w.bin', 'sub/../../secret.txt'] as const;

const pick = fc.nat({ max: 1 << 20 });
const weirdString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('\u0000', 'a\nb', '\r\n', '\u001b[31mred\u001b[0m', '\u2028', '\ud800', 'tab\there', '\u007f\u0085\u009b', '%s%d${x}',
    '../../x', ' ', 'Ω≈ç√', 'a'.repeat(100_000), 'x'.repeat(600)),
);

export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('replace-node' as const), at: pick, value: fc.jsonValue({ maxDepth: 2 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('bad-number' as const), at: pick, token: fc.constantFrom(...BAD_NUMBERS) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('deep' as const), at: pick, onlyNamedKeys: fc.boolean(), depth: fc.constantFrom(100_000, 5_000, 64), shape: fc.constantFrom('array' as const, 'object' as const) }) },
  { weight: 2, arbitrary: fc.record({
    kind: fc.constant('proto-word' as const), word: fc.constantFrom(...PROTO_WORDS), at: pick, value: fc.jsonValue({ maxDepth: 1 }),
    target: fc.constantFrom('class_name' as const, 'activation' as const, 'dtype' as const, 'padding' as const, 'format' as const,
      'topology-class' as const, 'layer-name' as const, 'weight-name' as const, 'config-key' as const, 'top-key' as const),
  }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete-key' as const), at: pick }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('duplicate-layer' as const), at: pick, rename: fc.boolean() }) },
  { weight: 2, arbitrary: fc.record({
    kind: fc.constant('inbound' as const), at: pick,
    op: fc.constantFrom('dangling' as const, 'self' as const, 'cycle' as const, 'empty' as const, 'shared' as const, 'twice' as const,
      'index' as const, 'not-array' as const, 'outputs' as const, 'inputs' as const),
  }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('batch-shape' as const), value: fc.constantFrom(...BATCH_SHAPES) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('weird-string' as const), at: pick, value: weirdString, renameLayer: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({
    kind: fc.constant('model-text' as const), bytes: fc.array(fc.nat({ max: 255 }), { maxLength: 64 }),
    variant: fc.constantFrom('not-json' as const, 'binary' as const, 'empty' as const, 'bom' as const, 'null' as const, 'array' as const,
      'string' as const, 'infinity' as const, 'utf16' as const, 'large' as const, 'deep' as const, 'bad-utf8' as const),
  }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('shard-path' as const), at: pick, target: fc.constantFrom(...SHARD_PATHS) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('exfil' as const), via: fc.constantFrom('parent' as const, 'absolute' as const, 'symlink' as const, 'symlink-dir' as const, 'dot-dot' as const) }) },
  { weight: 3, arbitrary: fc.record({
    kind: fc.constant('manifest-entry' as const), at: pick, value: pick,
    op: fc.constantFrom('shape' as const, 'dtype' as const, 'duplicate' as const, 'delete' as const, 'rename' as const, 'quantization' as const,
      'group' as const, 'split-shard' as const, 'swap' as const, 'paths-empty' as const, 'paths-twice' as const),
  }) },
  { weight: 2, arbitrary: fc.record({
    kind: fc.constant('shard-bytes' as const), at: pick, value: pick, bytes: fc.array(fc.nat({ max: 255 }), { minLength: 1, maxLength: 16 }),
    op: fc.constantFrom('truncate' as const, 'extend' as const, 'empty' as const, 'set-float' as const, 'random-bytes' as const),
  }) },
);

/** Seed index (the MNIST MLP is 20x larger, so it gets fewer cases) and 1-3 mutations. */
export const caseArb = fc.record({
  seed: fc.oneof({ weight: 1, arbitrary: fc.constant(0) }, { weight: 4, arbitrary: fc.constant(1) }),
  mutations: fc.array(mutationArb, { minLength: 1, maxLength: 3 }),
});
