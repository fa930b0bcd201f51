/**
 * BN folding for ONNX (--fold-bn): every BatchNormalization whose input is a Conv's or Gemm's output
 * that nothing else reads is removed, and the Conv / Gemm takes over its output tensor with
 *   s = gamma / sqrt(var + eps),  W'[c] = s_c W[c] (Conv: output channel c; Gemm: output unit c),
 *   Conv: b'_c = s_c (b_c - mean_c) + beta_c;  Gemm (y = alpha A W + beta C): C'_c = s_c C_c + (beta_c - s_c mean_c) / beta.
 * The topology changes, so this is the one writer that is not an in-place patch: the producer's
 * node and the graph are re-spliced (the producer's output field renamed, a bias input appended
 * when it had none, the BN node and its now unused initializers dropped, the new bias appended as
 * an initializer), and the graph's length prefix re-encoded. Every other byte is kept. BNs that do
 * not qualify (float16 or external tensors, shared weights, a Gemm with beta = 0) are left as they are.
 */
import protobuf from 'protobufjs/minimal.js';
import { ENormError } from '../../errors.js';
import { quote } from '../text.js';
import { attr, float } from './attributes.js';
import { graphFacts, type GraphFacts } from './graph.js';
import { encodeOnnxModel, readOnnxModel, type OnnxModel } from './index.js';
import { DataType, F } from './schema.js';
import { locate, readPayload, readValues, writePayload, type Payload } from './tensors.js';
import { decodeModel, type Span, type WireModel, type WireNode, type WireTensor } from './wire.js';

const { Writer } = protobuf;
type Edit = Span & { bytes: Uint8Array };

interface Fold { bn: WireNode; producer: WireNode; scale: Float32Array; shift: Float32Array; bias?: { tensor: WireTensor; payload: Payload } }

/** A float32 initializer that only `uses` readers read, stored in the model file: its tensor and payload. */
function ownFloat(facts: GraphFacts, name: string | undefined, uses = 1): { tensor: WireTensor; payload: Payload } | undefined {
  const tensor = name ? facts.constants.get(name)?.tensor : undefined;
  if (!tensor || tensor.dataType !== DataType.FLOAT || facts.uses.get(name as string) !== uses || facts.outputs.has(name as string)) return undefined;
  const payload = locate(tensor, () => undefined);
  return 'runs' in payload && payload.file === undefined ? { tensor, payload } : undefined;
}

function bnParams(bytes: Uint8Array, facts: GraphFacts, bn: WireNode): { scale: Float32Array; shift: Float32Array } | undefined {
  const [, g, b, m, v] = bn.inputs;
  const vals = [g, b, m, v].map((t) => { const c = t ? facts.constants.get(t)?.tensor : undefined; return c && c.dataType === DataType.FLOAT ? readValues(bytes, c) : undefined; });
  if (vals.some((x) => !x || x.length !== vals[0]?.length)) return undefined;
  const [gamma, beta, mean, variance] = vals as number[][];
  const eps = float(bn, 'epsilon', 1e-5);
  const scale = Float32Array.from(gamma, (gm, c) => gm / Math.sqrt(variance[c] + eps));
  // BN(y) = s y + (beta - s mean)
  const shift = Float32Array.from(beta, (bt, c) => bt - scale[c] * mean[c]);
  // A negative variance (or one that overflows) has no fold: the BN stays.
  return [...scale, ...shift].every(Number.isFinite) ? { scale, shift } : undefined;
}

/** The Fold for BN node `bn`, or undefined where it does not qualify. */
function candidate(bytes: Uint8Array, wire: WireModel, facts: GraphFacts, bn: WireNode): Fold | undefined {
  if (bn.domain !== '' || (attr(bn, 'training_mode')?.i ?? 0) !== 0 || bn.outputs.length !== 1) return undefined;
  const x = bn.inputs[0];
  const producer = wire.graph.nodes.find((n) => n.outputs[0] === x);
  if (!producer || producer.outputs.length !== 1 || facts.uses.get(x) !== 1 || !['Conv', 'Gemm'].includes(producer.opType) || producer.domain !== '') return undefined;
  const params = bnParams(bytes, facts, bn);
  const weight = ownFloat(facts, producer.inputs[1]);
  if (!params || !weight) return undefined;
  const gemm = producer.opType === 'Gemm';
  if (gemm && ((attr(producer, 'transA')?.i ?? 0) !== 0 || (attr(producer, 'beta')?.f ?? 1) === 0 || weight.tensor.dims.length !== 2)) return undefined;
  const out = gemm && (attr(producer, 'transB')?.i ?? 0) === 0 ? weight.tensor.dims[1] : weight.tensor.dims[0];
  if (out !== params.scale.length) return undefined;
  const biasName = producer.inputs[2];
  if (producer.inputs.length > 3 || biasName === '') return undefined;
  const bias = biasName === undefined ? undefined : ownFloat(facts, biasName);
  if (biasName !== undefined && (!bias || bias.payload.count !== out)) return undefined;
  return { bn, producer, ...params, bias };
}

/** Scales the producer's weight per output unit and returns its new bias (patched in place when it had one). */
function applyFold(bytes: Uint8Array, facts: GraphFacts, f: Fold): Float32Array {
  const w = ownFloat(facts, f.producer.inputs[1]) as { tensor: WireTensor; payload: Payload };
  const data = readPayload(bytes, w.payload);
  const dims = w.tensor.dims;
  const byColumn = f.producer.opType === 'Gemm' && (attr(f.producer, 'transB')?.i ?? 0) === 0;
  const out = f.scale.length;
  const per = data.length / out;
  for (let i = 0; i < data.length; i++) data[i] *= f.scale[byColumn ? i % dims[1] : Math.floor(i / per)];
  const beta = f.producer.opType === 'Gemm' ? attr(f.producer, 'beta')?.f ?? 1 : 1;
  const old = f.bias ? readPayload(bytes, f.bias.payload) : new Float32Array(out);
  const bias = Float32Array.from(old, (b, c) => f.scale[c] * b + f.shift[c] / beta);
  if (![...data, ...bias].every(Number.isFinite)) {
    throw new ENormError('E_OVERFLOW', `folding ONNX node ${quote(f.bn.name || f.bn.outputs[0])} into ${quote(f.producer.name || f.producer.outputs[0])} overflows float32; nothing was folded`);
  }
  writePayload(bytes, w.payload, data, w.tensor.name);
  if (f.bias) writePayload(bytes, f.bias.payload, bias, f.bias.tensor.name);
  return bias;
}

const field = (num: number) => (num << 3) | 2;

function tensorField(name: string, values: Float32Array): Uint8Array {
  const raw = new Uint8Array(values.length * 4);
  const v = new DataView(raw.buffer);
  values.forEach((x, i) => v.setFloat32(4 * i, x, true));
  const w = Writer.create().uint32(field(F.graph.initializer)).fork();
  w.uint32(F.tensor.dims << 3).int64(values.length);
  w.uint32(F.tensor.dataType << 3).int32(DataType.FLOAT);
  w.uint32(field(F.tensor.name)).string(name);
  w.uint32(field(F.tensor.rawData)).bytes(raw);
  return w.ldelim().finish();
}

const concat = (parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
};

/** `bytes[span]` with the edits (sorted, disjoint, inside the span) applied. */
function splice(bytes: Uint8Array, span: Span, edits: Edit[]): Uint8Array {
  const parts: Uint8Array[] = [];
  let at = span.start;
  for (const e of [...edits].sort((a, b) => a.start - b.start)) {
    parts.push(bytes.subarray(at, e.start), e.bytes);
    at = e.end;
  }
  parts.push(bytes.subarray(at, span.end));
  return concat(parts);
}

/** The producer node re-encoded: its output renamed to the BN's, and the new bias appended as an input. */
function producerField(bytes: Uint8Array, f: Fold, biasName: string | undefined): Uint8Array {
  const rename = Writer.create().uint32(field(F.node.output)).string(f.bn.outputs[0]).finish();
  const edits: Edit[] = [{ ...f.producer.outputFields[0], bytes: rename }];
  if (biasName) edits.push({ start: f.producer.content.end, end: f.producer.content.end, bytes: Writer.create().uint32(field(F.node.input)).string(biasName).finish() });
  const content = splice(bytes, f.producer.content, edits);
  return concat([Writer.create().uint32(field(F.graph.node)).uint32(content.length).finish(), content]);
}

/** A fresh tensor name: `base`, or `base_2`, ... */
function freshName(facts: GraphFacts, base: string): string {
  let name = base;
  for (let i = 2; facts.tensorNames.has(name); i++) name = `${base}_${i}`;
  facts.tensorNames.add(name);
  return name;
}

export interface FoldResult { model: OnnxModel; folded: string[] }

/** The model with every qualifying BatchNormalization folded into the Conv / Gemm before it (see the header). */
export function foldOnnxBatchNorm(model: OnnxModel): FoldResult {
  const { bytes: current, external } = encodeOnnxModel(model);
  const bytes = current.slice();
  const wire = decodeModel(bytes);
  const facts = graphFacts(wire.graph);
  const folds = wire.graph.nodes.filter((n) => n.opType === 'BatchNormalization').flatMap((bn) => candidate(bytes, wire, facts, bn) ?? []);
  if (folds.length === 0) return { model, folded: [] };
  const graphInputs = new Set(wire.graph.inputs.map((v) => v.name));
  const edits: Edit[] = [];
  const appended: Uint8Array[] = [];
  for (const f of folds) {
    const bias = applyFold(bytes, facts, f);
    const biasName = f.bias ? undefined : freshName(facts, `${f.bn.outputs[0]}.folded_bias`);
    if (biasName) appended.push(tensorField(biasName, bias));
    edits.push({ ...f.producer.field, bytes: producerField(bytes, f, biasName) }, { ...f.bn.field, bytes: new Uint8Array(0) });
    // The BN's parameters go too where nothing else reads them.
    for (const name of f.bn.inputs.slice(1)) {
      const t = wire.graph.initializers.find((i) => i.name === name);
      if (t?.field && facts.uses.get(name) === 1 && !graphInputs.has(name)) edits.push({ ...t.field, bytes: new Uint8Array(0) });
    }
  }
  edits.push({ start: wire.graphContent.end, end: wire.graphContent.end, bytes: concat(appended) });
  const graph = splice(bytes, wire.graphContent, edits);
  const head = Writer.create().uint32(field(F.model.graph)).uint32(graph.length).finish();
  const out = concat([bytes.subarray(0, wire.graphField.start), head, graph, bytes.subarray(wire.graphField.end)]);
  const merged = new Map(model.source.external);
  for (const [k, v] of external) merged.set(k, v);
  const folded = readOnnxModel(out, { externalData: merged });
  return { model: folded, folded: folds.map((f) => f.bn.name || f.bn.outputs[0]) };
}
