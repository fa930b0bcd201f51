/**
 * The CLI's output-deviation check: the network's outputs on `samples` seeded random inputs (or --inputs),
 * before and after balancing, with memory and work bounded whatever size the model declares.
 *
 * The input shape is first pushed through every layer by the shape pass (no allocation
 * proportional to it), which rejects a shape the weights do not fit, naming the layer. The pass
 * also gives the work and the peak memory of one example, so the check runs in chunks of
 * examples whose activations fit CHECK_LIMITS.chunkBytes, and is refused up front when its
 * total work or its stored outputs would exceed the limits.
 */
import { ENormError, isENormError } from '../errors.js';
import { forward, networkLayout } from '../network/forward.js';
import { forwardShapes } from '../network/forward-shapes.js';
import type { Network } from '../network/layers.js';
import { mulberry32 } from '../network/random.js';
import type { ModelRunner } from '../model-io/format.js';
import { SqnrAccumulator } from '../quantize/quantize.js';
import { CliFailure } from './failure.js';
import type { CheckInputs } from './inputs.js';

export const CHECK_LIMITS = {
  /** Float64 activations (and the float32 inputs) of one chunk of examples. */
  chunkBytes: 64 * 2 ** 20,
  /** The outputs kept from before balancing, to compare with those after. */
  outputBytes: 256 * 2 ** 20,
  /** Work of one pass (samples x per-example work; multiply-adds and element operations): seconds, not hours. */
  workPerPass: 2e9,
};

export interface Deviation {
  /** Largest |after - before| over every output of every sample. */
  absolute: number;
  /** absolute / largest |before| (absolute when every output is 0). */
  relative: number;
  /** Largest |before|. */
  scale: number;
}

const shapeText = (s: readonly number[]) => `[${s.join(', ')}]`;
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(bytes < 2 ** 20 ? 2 : 0)} MiB`;
const SKIP = 'lower --samples or --input-shape, or pass --samples 0 to skip the check';

/**
 * Checks that a per-example input `shape` fits the network's weights, through every layer:
 * ENormError (E_WIDTH, E_SHAPE, ...) naming the layer, prefixed with the model and where the shape came from.
 */
export function checkInputShape(net: Network, shape: number[], where: string) {
  try {
    return forwardShapes(net, networkLayout(net), [shape]);
  } catch (e) {
    if (!isENormError(e)) throw e;
    throw new ENormError(e.code, `${where} ${shapeText(shape)} does not fit the model: ${e.message}`, e.details);
  }
}

/** Whether a measured deviation allows writing: finite and within --max-deviation (NaN fails every comparison, so test "within"). */
export function deviationAccepted(dev: Deviation, maxDeviation: number): boolean {
  return Number.isFinite(dev.relative) && dev.relative <= maxDeviation;
}

export class DeviationCheck {
  private readonly size: number;
  private readonly chunk: number;
  /** Bytes one example needs while it runs: peak float64 activations and its float32 input. */
  readonly exampleBytes: number;
  private before: Float64Array | undefined;

  /**
   * Validates the shape and the limits; allocates nothing yet. `source` starts every message (the
   * model path); `where` says where the shape came from; `inputs` (--inputs) replaces the random
   * inputs, and then `samples` must be its example count.
   */
  constructor(net: Network, private readonly shape: number[], private readonly samples: number, private readonly seed: number, private readonly source: string, where: string,
    private readonly inputs?: CheckInputs) {
    const plan = checkInputShape(net, shape, `${source}: ${where}`);
    this.size = plan.inputShapes[0].reduce((a, b) => a * b, 1);
    const perExampleBytes = plan.peakValuesPerExample * 8 + this.size * 4;
    this.exampleBytes = perExampleBytes;
    const work = samples * plan.workPerExample;
    if (!(work <= CHECK_LIMITS.workPerPass)) {
      throw new CliFailure('E_OPTION', `${source}: the output-deviation check on ${samples} inputs of ${shapeText(shape)} would take ${work.toExponential(2)} operations per pass, ` +
        `over the limit of ${CHECK_LIMITS.workPerPass.toExponential(0)}: ${SKIP}`);
    }
    if (!(perExampleBytes <= CHECK_LIMITS.chunkBytes)) {
      throw new CliFailure('E_OPTION', `${source}: the output-deviation check needs ${mib(perExampleBytes)} of activations for one input of ${shapeText(shape)}, ` +
        `over the limit of ${mib(CHECK_LIMITS.chunkBytes)}: ${SKIP}`);
    }
    const outputBytes = samples * plan.outputValuesPerExample * 8;
    if (!(outputBytes <= CHECK_LIMITS.outputBytes)) {
      throw new CliFailure('E_OPTION', `${source}: the output-deviation check would keep ${mib(outputBytes)} of outputs for ${samples} inputs, ` +
        `over the limit of ${mib(CHECK_LIMITS.outputBytes)}: ${SKIP}`);
    }
    this.chunk = Math.max(1, Math.min(samples, Math.floor(CHECK_LIMITS.chunkBytes / perExampleBytes)));
  }

  /** Examples per forward call (at least 1); exposed for tests. */
  get chunkSize(): number {
    return this.chunk;
  }

  /**
   * The check's inputs chunk by chunk: the --inputs examples, or uniform in [0, 1) from one seeded
   * stream, the same for every pass.
   */
  private *inputChunks(): Generator<[x: Float32Array, n: number]> {
    const rng = mulberry32(this.seed);
    for (let done = 0; done < this.samples; done += this.chunk) {
      const n = Math.min(this.chunk, this.samples - done);
      if (this.inputs) {
        yield [this.inputs.data.subarray(done * this.size, (done + n) * this.size), n];
        continue;
      }
      const x = new Float32Array(n * this.size);
      for (let i = 0; i < x.length; i++) x[i] = rng();
      yield [x, n];
    }
  }

  /** All network outputs of each example of a chunk, concatenated, example-major (float64 forward pass). */
  private forwardChunk(net: Network, x: Float32Array, n: number): Float64Array {
    const outs = forward(net, [x], { batch: n, inputShapes: [this.shape] });
    const perExample = outs.map((o) => o.length / n);
    const width = perExample.reduce((a, b) => a + b, 0);
    const joined = new Float64Array(n * width);
    for (let b = 0; b < n; b++) {
      let at = b * width;
      outs.forEach((o, i) => {
        joined.set(o.subarray(b * perExample[i], (b + 1) * perExample[i]), at);
        at += perExample[i];
      });
    }
    return joined;
  }

  /** The outputs before balancing; E_NONFINITE if any is NaN or infinite (nothing can be measured then). */
  recordBefore(net: Network): void {
    const parts: ArrayLike<number>[] = [];
    for (const [x, n] of this.inputChunks()) parts.push(this.forwardChunk(net, x, n));
    this.keepBefore(parts);
  }

  /** recordBefore through a format's runtime (its first output). */
  async recordBeforeWith(run: ModelRunner): Promise<void> {
    const parts: ArrayLike<number>[] = [];
    for (const [x, n] of this.inputChunks()) parts.push(await run(x, n, this.shape));
    this.keepBefore(parts);
  }

  private keepBefore(parts: ArrayLike<number>[]): void {
    const before = new Float64Array(parts.reduce((t, p) => t + p.length, 0));
    let at = 0;
    for (const p of parts) { before.set(p, at); at += p.length; }
    const bad = before.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) {
      throw new CliFailure('E_NONFINITE', `${this.source}: the model's outputs are not finite before balancing (output value ${bad} on the check's ${this.inputs ? '--inputs' : 'random inputs'} is ${before[bad]}), ` +
        'so the deviation cannot be measured; nothing written (pass --samples 0 to skip the check)');
    }
    this.before = before;
  }

  /**
   * Output SQNR in dB of `approx` against `reference` on the check's inputs (float64 forward
   * passes of both): 10 log10(sum y^2 / sum (y - y~)^2), Infinity when they agree exactly.
   */
  outputSqnr(reference: Network, approx: Network): number {
    const acc = new SqnrAccumulator();
    for (const [x, n] of this.inputChunks()) acc.add(this.forwardChunk(reference, x, n), this.forwardChunk(approx, x, n));
    return acc.db;
  }

  /** Largest deviation of the outputs now from those recorded; NaN when an output became non-finite. */
  compareAfter(net: Network): Deviation {
    const meter = this.meter();
    for (const [x, n] of this.inputChunks()) meter.add(this.forwardChunk(net, x, n));
    return meter.result();
  }

  /** compareAfter through a format's runtime (compared with what recordBeforeWith kept). */
  async compareAfterWith(run: ModelRunner): Promise<Deviation> {
    const meter = this.meter();
    for (const [x, n] of this.inputChunks()) meter.add(await run(x, n, this.shape));
    return meter.result();
  }

  /** Accumulates max |after - before| chunk by chunk, in the order of inputChunks. */
  private meter() {
    const before = this.before;
    if (!before) throw new ENormError('E_STATE', 'DeviationCheck: compareAfter before recordBefore');
    let absolute = 0;
    let scale = 0;
    let finite = true;
    let offset = 0;
    return {
      add(after: ArrayLike<number>): void {
        if (offset + after.length > before.length) finite = false; // a runtime answered more outputs than before: no match
        for (let i = 0; i < after.length && offset + i < before.length; i++) {
          const d = Math.abs(after[i] - before[offset + i]);
          if (d > absolute) absolute = d;
          else if (Number.isNaN(d)) finite = false; // NaN fails every comparison: track it apart
          scale = Math.max(scale, Math.abs(before[offset + i]));
        }
        offset += after.length;
      },
      result(): Deviation {
        if (offset !== before.length) finite = false;
        const abs = finite ? absolute : NaN;
        return { absolute: abs, relative: scale > 0 ? abs / scale : abs, scale };
      },
    };
  }
}
