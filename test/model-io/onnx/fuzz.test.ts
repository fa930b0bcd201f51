/**
 * Fuzzes readOnnxModel with mutated valid models: byte flips, truncations, insertions and deletions
 * of the encoded file, and description-level changes (dims, data types, storage, attributes, node
 * inputs) that still encode. Every call must return a model or throw an ENormError with a
 * model-description code and one clean line; a returned model must write (or refuse with an
 * ENormError) and read back to as many layers, and fold its batch norms (or refuse likewise).
 * ENORM_FUZZ_SEED replays a run; ENORM_FUZZ_ONNX_RUNS changes the number of cases (default 3,000).
 */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { ENormError } from '../../../src/errors.js';
import { foldOnnxBatchNorm } from '../../../src/model-io/onnx/fold.js';
import { readOnnxModel, writeOnnxModel } from '../../../src/model-io/onnx/index.js';
import { fuzzRuns, fuzzSeed, Histogram } from '../../helpers/fuzz-stats.js';
import { buildOnnx, convTransposeNet, tfMlp, torchConvNet, torchLayerNormMlp, torchMlp, type ModelSpec } from '../../helpers/onnx-builder.js';

const SEED = fuzzSeed();
const RUNS = fuzzRuns(3000, 'ENORM_FUZZ_ONNX_RUNS');
const CODES = new Set(['E_MODEL', 'E_LAYER_KIND', 'E_MEMORY', 'E_SHAPE', 'E_WIDTH', 'E_GRAPH', 'E_NONFINITE', 'E_LAYOUT', 'E_OVERFLOW']);
const CONTROL = /[\p{Cc}\u2028\u2029]/u;
const outcomes = new Histogram();

const SPECS: (() => ModelSpec)[] = [
  () => torchMlp(), tfMlp, torchConvNet, () => torchMlp({ storage: 'float_data' }), () => torchMlp({}, 'float16'),
  () => torchLayerNormMlp('op'), () => torchLayerNormMlp('pow'), () => torchLayerNormMlp('opset18'), () => convTransposeNet(),
];

type ByteEdit = { kind: 'flip' | 'set' | 'insert' | 'delete' | 'truncate'; at: number; value: number };
const byteEdit: fc.Arbitrary<ByteEdit> = fc.record({
  kind: fc.constantFrom('flip', 'set', 'insert', 'delete', 'truncate'),
  at: fc.nat(),
  value: fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(0x80, 0xff, 0x0a, 0x12, 0x7f)),
});

function applyBytes(bytes: Uint8Array, edits: ByteEdit[]): Uint8Array {
  let b = Array.from(bytes);
  for (const e of edits) {
    if (b.length === 0) break;
    const at = e.at % b.length;
    if (e.kind === 'flip') b[at] ^= 1 << (e.value & 7);
    else if (e.kind === 'set') b[at] = e.value;
    else if (e.kind === 'insert') b.splice(at, 0, e.value);
    else if (e.kind === 'delete') b.splice(at, 1);
    else b = b.slice(0, at);
  }
  return Uint8Array.from(b);
}

type SpecEdit = { kind: 'dims' | 'type' | 'storage' | 'input' | 'attr' | 'op'; pick: number; value: number };
const specEdit: fc.Arbitrary<SpecEdit> = fc.record({
  kind: fc.constantFrom('dims', 'type', 'storage', 'input', 'attr', 'op'),
  pick: fc.nat(),
  value: fc.oneof(fc.integer({ min: -3, max: 40 }), fc.constantFrom(0, 2 ** 31, 2 ** 53, -(2 ** 40), 1e6)),
});

const OPS = ['Gemm', 'Conv', 'Relu', 'Add', 'Concat', 'Flatten', 'Reshape', 'BatchNormalization', 'Clip', 'Foo', 'LayerNormalization', 'ReduceMean', 'PRelu', 'ConvTranspose'];

function applySpec(spec: ModelSpec, edits: SpecEdit[]): ModelSpec {
  const inits = spec.initializers ?? [];
  for (const e of edits) {
    const t = inits[e.pick % Math.max(inits.length, 1)];
    const n = spec.nodes[e.pick % spec.nodes.length];
    if (e.kind === 'dims' && t) t.dims = [...t.dims.slice(0, e.pick % 3), e.value];
    if (e.kind === 'type' && t) t.type = (['float', 'float16', 'int64'] as const)[Math.abs(e.value) % 3];
    if (e.kind === 'storage' && t) t.storage = (['raw', 'float_data', 'raw'] as const)[Math.abs(e.value) % 3];
    if (e.kind === 'input') n.inputs[e.pick % Math.max(n.inputs.length, 1)] = ['x', 'h1', '', 'fc1.weight', n.outputs[0], 'input', 'r1'][Math.abs(e.value) % 7];
    if (e.kind === 'attr') n.attrs = { ...n.attrs, [['transB', 'group', 'axis', 'transA', 'kernel_shape'][Math.abs(e.value) % 5]]: e.value % 2 ? { i: e.value } : { ints: [e.value, 2] } };
    if (e.kind === 'op') n.op = OPS[Math.abs(e.value) % OPS.length];
  }
  return spec;
}

/** What is wrong with one call's outcome (empty: fine). */
function check(f: () => unknown, step: string): string[] {
  try {
    f();
    outcomes.add(`${step}: returned`);
    return [];
  } catch (e) {
    if (!(e instanceof ENormError)) return [`${step} threw a non-ENormError: ${String(e).slice(0, 200)}`];
    outcomes.add(`${step}: ${e.code}`);
    const bad: string[] = [];
    if (!CODES.has(e.code)) bad.push(`${step} threw ${e.code}`);
    if (CONTROL.test(e.message) || e.message.length > 500) bad.push(`${step}: message not one clean line: ${JSON.stringify(e.message.slice(0, 200))}`);
    return bad;
  }
}

function readWriteRead(bytes: Uint8Array): string[] {
  let model: ReturnType<typeof readOnnxModel> | undefined;
  const bad = check(() => { model = readOnnxModel(bytes); }, 'read');
  if (bad.length || !model) return bad;
  let out: Uint8Array | undefined;
  bad.push(...check(() => { out = writeOnnxModel(model!); }, 'write'));
  if (out) {
    const again = readOnnxModel(out);
    if (again.network.length !== model.network.length) bad.push(`read back to ${again.network.length} layers, not ${model.network.length}`);
  }
  bad.push(...check(() => foldOnnxBatchNorm(model!), 'fold'));
  return bad;
}

afterAll(() => {
  console.log(`onnx fuzz: seed ${SEED} (ENORM_FUZZ_SEED=${SEED} replays it), ${outcomes.total} calls`);
  console.log(outcomes.format('onnx outcomes'));
});

describe('readOnnxModel on mutated models', () => {
  it(`${RUNS} byte-mutated files: a model, or a clean ENormError`, () => {
    fc.assert(fc.property(fc.nat(SPECS.length - 1), fc.array(byteEdit, { minLength: 1, maxLength: 6 }), (which, edits) => {
      expect(readWriteRead(applyBytes(buildOnnx(SPECS[which]()).bytes, edits))).toEqual([]);
    }), { seed: SEED, numRuns: RUNS });
  }, 60_000);

  it(`${Math.ceil(RUNS / 3)} description-level mutations: a model, or a clean ENormError`, () => {
    fc.assert(fc.property(fc.nat(SPECS.length - 1), fc.array(specEdit, { minLength: 1, maxLength: 4 }), (which, edits) => {
      let bytes: Uint8Array;
      try {
        bytes = buildOnnx(applySpec(SPECS[which](), edits)).bytes;
      } catch {
        return; // the builder refused the description: nothing to read
      }
      expect(readWriteRead(bytes)).toEqual([]);
    }), { seed: SEED, numRuns: Math.ceil(RUNS / 3) });
  }, 60_000);
});
