/**
 * The checks every runtime runs against a built entry of the package (Node ESM and CommonJS, Deno,
 * Bun, Chromium, workerd): function preservation, the energy minimiser, bad input, and agreement of
 * the SIMD, scalar and JS kernels. Plain code with its own asserts, so that each runtime's harness
 * only registers CASES with its test runner.
 */
import { allArrays, cloneNetwork, maxRelDiff, snapshot } from '../helpers/arrays.ts';

export type Enorm = typeof import('../../src/index.js');
type Network = ReturnType<Enorm['mlp']>;

export interface Case {
  name: string;
  run(enorm: Enorm): Promise<void>;
}

class CheckFailed extends Error {
  override name = 'CheckFailed';
}

function check(ok: boolean, message: string): asserts ok {
  if (!ok) throw new CheckFailed(message);
}

/** Every array of the network holds the same bits as its snapshot (NaN included). */
function unchanged(net: Network, before: Uint32Array[], what: string): void {
  snapshot(net).forEach((now, i) => check(now.length === before[i].length && now.every((x, j) => x === before[i][j]), `${what}: array ${i} changed`));
}

function randomInputs(rand: () => number, n: number): Float64Array {
  return Float64Array.from({ length: n }, () => rand() * 2 - 1);
}

/** The weight energy sum ||W||^2 over dense and conv weights, in float64. */
function energyOf(net: Network): number {
  let e = 0;
  for (const layer of net) {
    if (layer.kind !== 'dense' && layer.kind !== 'conv2d') continue;
    for (const w of layer.weight) e += w * w;
  }
  return e;
}

async function rejects(promise: Promise<unknown>, enorm: Enorm, code: string, what: string): Promise<InstanceType<Enorm['ENormError']>> {
  try {
    await promise;
  } catch (e) {
    check(enorm.isENormError(e), `${what}: expected an ENormError, got ${String(e)}`);
    check(e.code === code, `${what}: expected ${code}, got ${e.code}: ${e.message}`);
    return e;
  }
  throw new CheckFailed(`${what}: expected ${code}, but it resolved`);
}

const mlpNet = (enorm: Enorm) => enorm.mlp({ sizes: [12, 16, 16, 8, 4], seed: 3 });
const convNet = (enorm: Enorm) => enorm.convChain({ channels: [3, 6, 6, 4], seed: 4 });

export const CASES: Case[] = [
  {
    name: 'function preservation: an MLP and a conv chain keep their outputs (c = 1 and c = 1.2)',
    async run(enorm) {
      const rand = enorm.mulberry32(7);
      for (const c of [1, 1.2]) {
        for (const [net, inputs, inputShapes] of [
          [mlpNet(enorm), randomInputs(rand, 5 * 12), undefined],
          [convNet(enorm), randomInputs(rand, 5 * 6 * 6 * 3), [[6, 6, 3]]],
        ] as const) {
          const options = { batch: 5, inputShapes: inputShapes as number[][] | undefined };
          const before = enorm.forward(net, [inputs], options)[0];
          const report = await enorm.balance(net, { c });
          // c = 1 minimises the plain energy; c != 1 a layer-weighted one
          if (c === 1) check(report.energyAfter < report.energyBefore, `energy ${report.energyBefore} -> ${report.energyAfter} did not go down`);
          check(report.converged, `c=${c}: did not converge`);
          const after = enorm.forward(net, [inputs], options)[0];
          const d = maxRelDiff(after, before);
          check(d < 1e-5, `c=${c}: outputs moved by ${d} (relative)`);
        }
      }
    },
  },
  {
    name: 'energy minimiser: matches the float64 reference, no rescaling lowers it, and it is unique',
    async run(enorm) {
      const net = mlpNet(enorm);
      const reference = enorm.balanceReference(net, { tolerance: 1e-12, maxCycles: 2000 });
      const twin = cloneNetwork(net);
      const report = await enorm.balance(net, { tolerance: 1e-12, maxCycles: 2000 });
      const want = reference.energies[reference.energies.length - 1];
      check(Math.abs(report.energyAfter - want) <= 1e-5 * want, `energy ${report.energyAfter} != reference ${want}`);
      check(report.converged, 'did not converge');

      // Moving any hidden unit's scale off the balanced point raises the energy.
      const balanced = energyOf(net);
      for (const [k, unit] of [[0, 3], [2, 11], [4, 0]] as const) {
        for (const t of [0.9, 1.1]) {
          const moved = cloneNetwork(net);
          const into = moved[k];
          const outOf = moved[k + 2];
          check(into.kind === 'dense' && outOf.kind === 'dense', 'expected dense layers');
          const [fanIn, width] = into.shape;
          for (let i = 0; i < fanIn; i++) into.weight[i * width + unit] *= t;
          into.bias![unit] *= t;
          for (let o = 0; o < outOf.shape[1]; o++) outOf.weight[unit * outOf.shape[1] + o] /= t;
          check(energyOf(moved) > balanced, `scaling unit ${unit} of layer ${k} by ${t} lowered the energy`);
        }
      }

      // A function-equivalent twin (hidden units rescaled at random) balances to the same weights.
      const rand = enorm.mulberry32(11);
      for (let k = 0; k + 2 < twin.length; k += 2) {
        const into = twin[k];
        const outOf = twin[k + 2];
        check(into.kind === 'dense' && outOf.kind === 'dense', 'expected dense layers');
        const [fanIn, width] = into.shape;
        for (let u = 0; u < width; u++) {
          const d = 0.25 + 3 * rand();
          for (let i = 0; i < fanIn; i++) into.weight[i * width + u] *= d;
          into.bias![u] *= d;
          for (let o = 0; o < outOf.shape[1]; o++) outOf.weight[u * outOf.shape[1] + o] /= d;
        }
      }
      await enorm.balance(twin, { tolerance: 1e-12, maxCycles: 2000 });
      allArrays(net).forEach((a, i) => {
        const d = maxRelDiff(allArrays(twin)[i], a);
        check(d < 1e-4, `array ${i}: the twin balanced to weights ${d} (relative) away`);
      });
    },
  },
  {
    name: 'bad input: typed errors that name the layer, and nothing changed',
    async run(enorm) {
      const net = mlpNet(enorm);
      const layer = net[2];
      check(layer.kind === 'dense', 'expected a dense layer');
      layer.weight[5] = Number.NaN;
      const before = snapshot(net);
      const nan = await rejects(enorm.balance(net), enorm, 'E_NONFINITE', 'NaN weight');
      check(nan.details.layer === 'dense2' && nan.details.tensor === 'weight' && nan.details.index === 5,
        `NaN weight: details ${JSON.stringify(nan.details)}`);
      check(nan.message.includes('dense2'), `NaN weight: the message does not name the layer: ${nan.message}`);
      unchanged(net, before, 'NaN weight');

      const ok = mlpNet(enorm);
      const untouched = snapshot(ok);
      await rejects(enorm.balance(ok, { c: -1 }), enorm, 'E_OPTION', 'c = -1');
      await rejects(enorm.balance(ok, { p: 0 }), enorm, 'E_OPTION', 'p = 0');
      const short = cloneNetwork(ok);
      const first = short[0];
      check(first.kind === 'dense', 'expected a dense layer');
      first.weight = first.weight.subarray(0, first.weight.length - 1);
      const shape = await rejects(enorm.balance(short), enorm, 'E_SHAPE', 'short weight');
      check(shape.details.layer === 'dense1', `short weight: details ${JSON.stringify(shape.details)}`);
      const wide = cloneNetwork(ok);
      const third = wide[4];
      check(third.kind === 'dense', 'expected a dense layer');
      third.shape = [third.shape[0] + 1, third.shape[1]];
      third.weight = new Float32Array(third.shape[0] * third.shape[1]);
      await rejects(enorm.balance(wide), enorm, 'E_WIDTH', 'width mismatch');
      unchanged(ok, untouched, 'rejected options');
    },
  },
  {
    name: 'kernels: the SIMD, scalar and JS backends agree',
    async run(enorm) {
      check(enorm.simdSupported(), 'this runtime does not validate the SIMD build');
      const results = [];
      for (const backend of ['simd', 'scalar', 'js'] as const) {
        const net = convNet(enorm);
        const report = await enorm.balance(net, { backend, c: 1.1, tolerance: 0, maxCycles: 25 });
        check(report.backend === backend, `asked for ${backend}, ran on ${report.backend}`);
        results.push({ backend, report, arrays: allArrays(net) });
      }
      const [simd, ...others] = results;
      for (const other of others) {
        check(other.report.cycles === simd.report.cycles, `${other.backend}: ${other.report.cycles} cycles, simd ${simd.report.cycles}`);
        const e = Math.abs(other.report.energyAfter - simd.report.energyAfter) / simd.report.energyAfter;
        check(e < 1e-9, `${other.backend}: energy differs from simd by ${e}`);
        other.arrays.forEach((a, i) => {
          const d = maxRelDiff(a, simd.arrays[i]);
          check(d < 1e-6, `${other.backend}: array ${i} differs from simd by ${d}`);
        });
      }
    },
  },  {
    name: 'range equalisation (p = Infinity): converges on scale changes, the three backends agree bit for bit',
    async run(enorm) {
      const bits = [];
      for (const backend of ['simd', 'scalar', 'js'] as const) {
        const net = convNet(enorm);
        const report = await enorm.balance(net, { backend, p: Infinity, c: 1.1 });
        check(report.converged && report.maxScaleChange <= 1e-6, `${backend}: not converged (maxScaleChange ${report.maxScaleChange})`);
        bits.push(snapshot(net).map((a) => Array.from(a).join(',')).join(';'));
      }
      check(bits[1] === bits[0] && bits[2] === bits[0], 'the backends differ at p = Infinity');
    },
  },
];
