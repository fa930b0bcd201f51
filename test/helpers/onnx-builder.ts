/**
 * Builds ONNX models for the tests by encoding plain descriptions with protobufjs from enorm's
 * ONNX schema (src/model-io/onnx/schema.ts), and a few graphs in the two export styles the issue
 * names: PyTorch (Gemm transB=1, Conv+BN+Relu, channels-first Flatten, residual Add) and TF
 * (MatMul 'io' + Add bias).
 */
import protobuf from 'protobufjs';
import { ONNX_SCHEMA } from '../../src/model-io/onnx/schema.js';
import { floatToHalf } from '../../src/model-io/onnx/tensors.js';
import { mulberry32 } from '../../src/network/random.js';

const root = protobuf.Root.fromJSON(ONNX_SCHEMA);
export const ModelProto = root.lookupType('onnx.ModelProto');

export type Storage = 'raw' | 'float_data' | 'external';
export interface TensorSpec {
  name: string;
  dims: number[];
  data: ArrayLike<number>;
  type?: 'float' | 'float16' | 'int64';
  storage?: Storage;
  /** For storage 'external': the file (default 'weights.bin'). */
  location?: string;
}
export type Attr = { i: number } | { f: number } | { ints: number[] } | { floats: number[] } | { s: string } | { t: TensorSpec } | { g: GraphSpec };
/** A subgraph (an If branch, a Loop or Scan body): it may read any tensor of the graphs around it. */
export interface GraphSpec {
  nodes: NodeSpec[];
  initializers?: TensorSpec[];
  inputs?: { name: string; dims: (number | string)[]; type?: 'float' | 'float16' }[];
  outputs: { name: string; dims?: (number | string)[]; type?: 'float' | 'float16' }[];
}
export interface NodeSpec { op: string; inputs: string[]; outputs: string[]; name?: string; attrs?: Record<string, Attr>; domain?: string }
export interface ModelSpec {
  inputs: { name: string; dims: (number | string)[]; type?: 'float' | 'float16' }[];
  outputs: { name: string; dims?: (number | string)[]; type?: 'float' | 'float16' }[];
  nodes: NodeSpec[];
  initializers?: TensorSpec[];
  opset?: number;
  docString?: string;
  metadata?: Record<string, string>;
  /** Extra value_info entries (kept by the writer). */
  valueInfo?: { name: string; dims: (number | string)[] }[];
}

const TYPES = { float: 1, float16: 10, int64: 7 } as const;

/** Encodes the model; external tensors go into the returned files (appended, 16-byte aligned). */
export function buildOnnx(spec: ModelSpec): { bytes: Uint8Array; external: Map<string, Uint8Array> } {
  const files = new Map<string, number[]>();
  const tensor = (t: TensorSpec) => tensorProto(t, files);
  const valueInfo = (v: { name: string; dims?: (number | string)[]; type?: 'float' | 'float16' }) => ({
    name: v.name,
    type: { tensorType: { elemType: TYPES[v.type ?? 'float'], shape: v.dims ? { dim: v.dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } : undefined } },
  });
  const attribute = (name: string, a: Attr) => {
    if ('i' in a) return { name, type: 2, i: a.i };
    if ('f' in a) return { name, type: 1, f: a.f };
    if ('ints' in a) return { name, type: 7, ints: a.ints };
    if ('floats' in a) return { name, type: 6, floats: a.floats };
    if ('s' in a) return { name, type: 3, s: new TextEncoder().encode(a.s) };
    if ('g' in a) return { name, type: 5, g: graph(a.g, name) };
    return { name, type: 4, t: tensor(a.t) };
  };
  const graph = (g: GraphSpec & { valueInfo?: ModelSpec['valueInfo'] }, name: string): object => ({
    name,
    node: g.nodes.map((n, i) => ({
      name: n.name ?? `${n.op}_${i}`, opType: n.op, input: n.inputs, output: n.outputs, domain: n.domain ?? '',
      attribute: Object.entries(n.attrs ?? {}).map(([k, a]) => attribute(k, a)),
    })),
    initializer: (g.initializers ?? []).map(tensor),
    input: (g.inputs ?? []).map(valueInfo),
    output: g.outputs.map(valueInfo),
    valueInfo: (g.valueInfo ?? []).map(valueInfo),
  });
  const model = {
    irVersion: 8,
    producerName: 'enorm-test',
    docString: spec.docString ?? '',
    opsetImport: [{ domain: '', version: spec.opset ?? 17 }],
    metadataProps: Object.entries(spec.metadata ?? {}).map(([key, value]) => ({ key, value })),
    graph: graph(spec, 'g'),
  };
  const err = ModelProto.verify(model);
  if (err) throw new Error(err);
  const bytes = ModelProto.encode(ModelProto.fromObject(model)).finish();
  return { bytes: Uint8Array.from(bytes), external: new Map([...files].map(([k, v]) => [k, Uint8Array.from(v)])) };
}

function tensorProto(t: TensorSpec, files: Map<string, number[]>) {
  const type = t.type ?? 'float';
  const base = { name: t.name, dims: t.dims, dataType: TYPES[type] };
  const raw = rawBytes(t.data, type);
  const storage = t.storage ?? 'raw';
  if (storage === 'external') {
    const location = t.location ?? 'weights.bin';
    const file = files.get(location) ?? [];
    while (file.length % 16) file.push(0);
    const offset = file.length;
    file.push(...raw);
    files.set(location, file);
    return { ...base, dataLocation: 1, externalData: [{ key: 'location', value: location }, { key: 'offset', value: String(offset) }, { key: 'length', value: String(raw.length) }] };
  }
  if (storage === 'float_data') {
    if (type === 'float') return { ...base, floatData: Array.from(t.data) };
    if (type === 'int64') return { ...base, int64Data: Array.from(t.data) };
    return { ...base, int32Data: Array.from(t.data, floatToHalf) };
  }
  return { ...base, rawData: raw };
}

function rawBytes(data: ArrayLike<number>, type: 'float' | 'float16' | 'int64'): Uint8Array {
  const width = type === 'float' ? 4 : type === 'float16' ? 2 : 8;
  const out = new Uint8Array(data.length * width);
  const v = new DataView(out.buffer);
  for (let i = 0; i < data.length; i++) {
    if (type === 'float') v.setFloat32(i * 4, data[i], true);
    else if (type === 'float16') v.setUint16(i * 2, floatToHalf(data[i]), true);
    else v.setBigInt64(i * 8, BigInt(data[i]), true);
  }
  return out;
}

/** Uniform weights in [-scale, scale) (deterministic), badly scaled per output so balancing has work to do. */
export function weights(seed: number, n: number, scale = 1): Float32Array {
  const rnd = mulberry32(seed);
  return Float32Array.from({ length: n }, (_, i) => (rnd() * 2 - 1) * scale * (1 + (i % 7)));
}

export const init = (name: string, dims: number[], seed: number, extra: Partial<TensorSpec> = {}): TensorSpec =>
  ({ name, dims, data: weights(seed, dims.reduce((a, b) => a * b, 1), 0.5), ...extra });

/** PyTorch-style MLP: x[N,8] -> Gemm(transB=1) -> Relu -> Gemm(transB=1) -> y. */
export function torchMlp(extra: Partial<TensorSpec> = {}, type: 'float' | 'float16' = 'float'): ModelSpec {
  const t = { ...extra, type };
  return {
    inputs: [{ name: 'x', dims: ['N', 8], type }],
    outputs: [{ name: 'y', dims: ['N', 3], type }],
    initializers: [init('fc1.weight', [16, 8], 1, t), init('fc1.bias', [16], 2, t), init('fc2.weight', [3, 16], 3, t), init('fc2.bias', [3], 4, t)],
    nodes: [
      { op: 'Gemm', inputs: ['x', 'fc1.weight', 'fc1.bias'], outputs: ['h1'], attrs: { transB: { i: 1 } }, name: '/fc1/Gemm' },
      { op: 'Relu', inputs: ['h1'], outputs: ['a1'], name: '/relu/Relu' },
      { op: 'Gemm', inputs: ['a1', 'fc2.weight', 'fc2.bias'], outputs: ['y'], attrs: { transB: { i: 1 } }, name: '/fc2/Gemm' },
    ],
  };
}

/** TF-style MLP: MatMul with an 'io' kernel, then Add of the bias; LeakyRelu between. */
export function tfMlp(): ModelSpec {
  return {
    inputs: [{ name: 'x', dims: ['unk__0', 6] }],
    outputs: [{ name: 'y', dims: ['unk__0', 4] }],
    initializers: [init('dense/kernel', [6, 12], 11), init('dense/bias', [12], 12), init('dense_1/kernel', [12, 4], 13), init('dense_1/bias', [4], 14)],
    nodes: [
      { op: 'MatMul', inputs: ['x', 'dense/kernel'], outputs: ['mm0'] },
      { op: 'Add', inputs: ['mm0', 'dense/bias'], outputs: ['z0'] },
      { op: 'LeakyRelu', inputs: ['z0'], outputs: ['a0'], attrs: { alpha: { f: 0.2 } } },
      { op: 'MatMul', inputs: ['a0', 'dense_1/kernel'], outputs: ['mm1'] },
      { op: 'Add', inputs: ['mm1', 'dense_1/bias'], outputs: ['y'] },
    ],
  };
}

/**
 * PyTorch-style conv net on x[N,3,8,8]: Conv+BN+Relu, a depthwise Conv+Relu, a residual Add with a
 * 1x1 Conv branch, MaxPool, channels-first Flatten, Gemm(transB=1).
 */
export function torchConvNet(): ModelSpec {
  const bn = (p: string, c: number, seed: number): TensorSpec[] => [
    init(`${p}.weight`, [c], seed), init(`${p}.bias`, [c], seed + 1),
    { name: `${p}.running_mean`, dims: [c], data: weights(seed + 2, c, 0.1) },
    { name: `${p}.running_var`, dims: [c], data: Array.from(weights(seed + 3, c, 0.2), (v) => 0.5 + Math.abs(v)) },
  ];
  const pads = { pads: { ints: [1, 1, 1, 1] } };
  return {
    inputs: [{ name: 'input', dims: ['batch', 3, 8, 8] }],
    outputs: [{ name: 'logits', dims: ['batch', 5] }],
    initializers: [
      init('conv1.weight', [6, 3, 3, 3], 21), ...bn('bn1', 6, 22),
      init('dw.weight', [6, 1, 3, 3], 27), init('dw.bias', [6], 28),
      init('pw.weight', [6, 6, 1, 1], 29), init('pw.bias', [6], 30),
      init('fc.weight', [5, 6 * 4 * 4], 31), init('fc.bias', [5], 32),
    ],
    nodes: [
      { op: 'Conv', inputs: ['input', 'conv1.weight'], outputs: ['c1'], attrs: { kernel_shape: { ints: [3, 3] }, ...pads } },
      { op: 'BatchNormalization', inputs: ['c1', 'bn1.weight', 'bn1.bias', 'bn1.running_mean', 'bn1.running_var'], outputs: ['b1'], attrs: { epsilon: { f: 1e-5 } } },
      { op: 'Relu', inputs: ['b1'], outputs: ['r1'] },
      { op: 'Conv', inputs: ['r1', 'dw.weight', 'dw.bias'], outputs: ['d1'], attrs: { group: { i: 6 }, kernel_shape: { ints: [3, 3] }, ...pads } },
      { op: 'Relu', inputs: ['d1'], outputs: ['r2'] },
      { op: 'Conv', inputs: ['r2', 'pw.weight', 'pw.bias'], outputs: ['p1'], attrs: { kernel_shape: { ints: [1, 1] } } },
      { op: 'Add', inputs: ['p1', 'r1'], outputs: ['res'] },
      { op: 'Relu', inputs: ['res'], outputs: ['r3'] },
      { op: 'MaxPool', inputs: ['r3'], outputs: ['mp'], attrs: { kernel_shape: { ints: [2, 2] }, strides: { ints: [2, 2] } } },
      { op: 'Flatten', inputs: ['mp'], outputs: ['flat'], attrs: { axis: { i: 1 } } },
      { op: 'Gemm', inputs: ['flat', 'fc.weight', 'fc.bias'], outputs: ['logits'], attrs: { transB: { i: 1 } } },
    ],
  };
}

/** How the LayerNorm of torchLayerNormMlp is written: the opset-17 op, or decomposed with Pow / Mul(d, d) / opset-18 ReduceMean (axes as an input). */
export type LayerNormStyle = 'op' | 'pow' | 'mul' | 'opset18';

/** The decomposed layer norm of `x` (older PyTorch exporters), output `y`; `p` prefixes the intermediate names. */
export function decomposedLayerNorm(x: string, y: string, style: Exclude<LayerNormStyle, 'op'>, p = 'ln'): NodeSpec[] {
  const mean = (input: string, output: string): NodeSpec => (style === 'opset18'
    ? { op: 'ReduceMean', inputs: [input, `${p}.axes`], outputs: [output] }
    : { op: 'ReduceMean', inputs: [input], outputs: [output], attrs: { axes: { ints: [-1] } } });
  return [
    mean(x, `${p}.mu`),
    { op: 'Sub', inputs: [x, `${p}.mu`], outputs: [`${p}.d`] },
    style === 'mul' ? { op: 'Mul', inputs: [`${p}.d`, `${p}.d`], outputs: [`${p}.d2`] } : { op: 'Pow', inputs: [`${p}.d`, `${p}.two`], outputs: [`${p}.d2`] },
    mean(`${p}.d2`, `${p}.var`),
    { op: 'Add', inputs: [`${p}.var`, `${p}.eps`], outputs: [`${p}.ve`] },
    { op: 'Sqrt', inputs: [`${p}.ve`], outputs: [`${p}.sd`] },
    { op: 'Div', inputs: [`${p}.d`, `${p}.sd`], outputs: [`${p}.n`] },
    { op: 'Mul', inputs: [`${p}.n`, `${p}.weight`], outputs: [`${p}.g`] },
    { op: 'Add', inputs: [`${p}.g`, `${p}.bias`], outputs: [y] },
  ];
}

/** The constants a layer norm of `f` features reads (gamma, beta, and the decomposed form's 2, eps and axes). */
export function layerNormConstants(f: number, seed: number, p = 'ln'): TensorSpec[] {
  return [
    init(`${p}.weight`, [f], seed), init(`${p}.bias`, [f], seed + 1),
    { name: `${p}.two`, dims: [], data: [2] }, { name: `${p}.eps`, dims: [], data: [1e-5] },
    { name: `${p}.axes`, dims: [1], data: [-1], type: 'int64' },
  ];
}

/** PyTorch-style MLP with a LayerNorm: x[N,8] -> Gemm(transB=1) -> LayerNorm(12) -> Relu -> Gemm(transB=1) -> y[N,4]. */
export function torchLayerNormMlp(style: LayerNormStyle): ModelSpec {
  const ln: NodeSpec[] = style === 'op'
    ? [{ op: 'LayerNormalization', inputs: ['h1', 'ln.weight', 'ln.bias'], outputs: ['n1'], attrs: { axis: { i: -1 }, epsilon: { f: 1e-5 } } }]
    : decomposedLayerNorm('h1', 'n1', style);
  return {
    opset: style === 'opset18' ? 18 : 17,
    inputs: [{ name: 'x', dims: ['N', 8] }],
    outputs: [{ name: 'y', dims: ['N', 4] }],
    initializers: [init('fc1.weight', [12, 8], 61), init('fc1.bias', [12], 62), ...layerNormConstants(12, 63), init('fc2.weight', [4, 12], 65), init('fc2.bias', [4], 66)],
    nodes: [
      { op: 'Gemm', inputs: ['x', 'fc1.weight', 'fc1.bias'], outputs: ['h1'], attrs: { transB: { i: 1 } } },
      ...ln,
      { op: 'Relu', inputs: ['n1'], outputs: ['a1'] },
      { op: 'Gemm', inputs: ['a1', 'fc2.weight', 'fc2.bias'], outputs: ['y'], attrs: { transB: { i: 1 } } },
    ],
  };
}

/**
 * A decoder on x[N,3,5,5]: Conv(3->4, 3x3, pads 1) -> PRelu(slope [4,1,1], mixed signs) ->
 * ConvTranspose(4->6, 4x4, stride 2, pads 1 = TF 'same') + bias -> Relu -> ConvTranspose(6->2,
 * 3x3, stride 2, `last` = auto_pad SAME_UPPER or no pads ('valid')) + bias -> y.
 */
export function convTransposeNet(last: 'same' | 'valid' = 'same'): ModelSpec {
  return {
    inputs: [{ name: 'x', dims: ['N', 3, 5, 5] }],
    outputs: [{ name: 'y' }],
    initializers: [
      init('conv.weight', [4, 3, 3, 3], 71), init('conv.bias', [4], 72),
      { name: 'prelu.slope', dims: [4, 1, 1], data: [0.25, -0.5, 1.5, 0] },
      init('up1.weight', [4, 6, 4, 4], 73), init('up1.bias', [6], 74),
      init('up2.weight', [6, 2, 3, 3], 75), init('up2.bias', [2], 76),
    ],
    nodes: [
      { op: 'Conv', inputs: ['x', 'conv.weight', 'conv.bias'], outputs: ['c'], attrs: { kernel_shape: { ints: [3, 3] }, pads: { ints: [1, 1, 1, 1] } } },
      { op: 'PRelu', inputs: ['c', 'prelu.slope'], outputs: ['p'] },
      { op: 'ConvTranspose', inputs: ['p', 'up1.weight', 'up1.bias'], outputs: ['u1'], attrs: { strides: { ints: [2, 2] }, pads: { ints: [1, 1, 1, 1] } } },
      { op: 'Relu', inputs: ['u1'], outputs: ['r'] },
      { op: 'ConvTranspose', inputs: ['r', 'up2.weight', 'up2.bias'], outputs: ['y'], attrs: { strides: { ints: [2, 2] }, ...(last === 'same' ? { auto_pad: { s: 'SAME_UPPER' } } : {}) } },
    ],
  };
}

/**
 * A ResNeXt-style block on x[N,4,6,6]: Conv(4->6, 3x3, pads 1) + bias -> Relu -> Conv(6->6, 3x3,
 * pads 1, group `group`, weight [6, 6 / group, 3, 3]) + bias -> Relu -> Conv(6->3, 1x1) + bias -> y.
 */
export function groupedConvNet(group = 2): ModelSpec {
  const pads = { kernel_shape: { ints: [3, 3] }, pads: { ints: [1, 1, 1, 1] } };
  return {
    inputs: [{ name: 'x', dims: ['N', 4, 6, 6] }],
    outputs: [{ name: 'y' }],
    initializers: [
      init('conv1.weight', [6, 4, 3, 3], 81), init('conv1.bias', [6], 82),
      init('grouped.weight', [6, 6 / group, 3, 3], 83), init('grouped.bias', [6], 84),
      init('head.weight', [3, 6, 1, 1], 85), init('head.bias', [3], 86),
    ],
    nodes: [
      { op: 'Conv', inputs: ['x', 'conv1.weight', 'conv1.bias'], outputs: ['c1'], attrs: pads },
      { op: 'Relu', inputs: ['c1'], outputs: ['r1'] },
      { op: 'Conv', inputs: ['r1', 'grouped.weight', 'grouped.bias'], outputs: ['g'], attrs: { ...pads, group: { i: group } } },
      { op: 'Relu', inputs: ['g'], outputs: ['r2'] },
      { op: 'Conv', inputs: ['r2', 'head.weight', 'head.bias'], outputs: ['y'], attrs: { kernel_shape: { ints: [1, 1] } } },
    ],
  };
}
