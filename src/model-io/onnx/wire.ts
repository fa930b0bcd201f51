/**
 * A reader of the ONNX wire format (protobuf) for untrusted files: it decodes the fields enorm
 * uses (schema.ts) into plain objects and records where each tensor's payload lies in the file, so
 * the writer can patch exactly those bytes. Every length is checked against the bytes present by
 * protobufjs's Reader (it throws on a read past the end), payloads are never copied here, and
 * subgraphs (If / Loop / Scan bodies) are walked for tensor names only (scope.ts): what they read
 * from the graph around them, at most MAX_SUBGRAPH_DEPTH deep.
 */
import protobuf from 'protobufjs/minimal.js';
import { ENormError } from '../../errors.js';
import { quote } from '../text.js';
import { F, GRAPH_ATTRIBUTE_TYPES } from './schema.js';
import { fields, sub } from './fields.js';
import { outerReads } from './scope.js';

type Reader = protobuf.Reader;
const { Reader: ReaderClass } = protobuf;

/** `count` 4-byte little-endian elements starting at byte `start` of the file. */
export interface Run { start: number; count: number }

export interface WireTensor {
  name: string;
  dims: number[];
  dataType: number;
  /** Byte range of raw_data in the file. */
  raw?: { start: number; length: number };
  /** float_data, as the runs the file stores (one run when packed). */
  floatRuns: Run[];
  int32Data: number[];
  int64Data: number[];
  external: Map<string, string>;
  dataLocation: number;
  /** An initializer's field in the graph (tag to end). */
  field?: Span;
}

export interface WireAttribute {
  name: string;
  type: number;
  f?: number;
  i?: number;
  s?: string;
  t?: WireTensor;
  floats: number[];
  ints: number[];
  /** The attribute holds a subgraph (g / graphs), which is walked for names only. */
  subgraph: boolean;
  /** The tensors of the enclosing graph(s) its subgraphs read (scope.ts). */
  outerReads: string[];
}

/** A byte range of the file: [start, end). */
export interface Span { start: number; end: number }
export interface WireNode {
  name: string; opType: string; domain: string; inputs: string[]; outputs: string[]; attributes: WireAttribute[];
  /** The node's field in the graph (tag to end), its content, and each output field (for fold.ts's splices). */
  field: Span; content: Span; outputFields: Span[];
  /** Outer tensors its subgraphs read (If / Loop / Scan bodies), each once: inputs the node does not list. */
  scopeReads: string[];
}
/** dims: per dimension its value, or null where the file names it (dim_param) or leaves it out; undefined: no shape. */
export interface WireValueInfo { name: string; elemType: number; dims?: (number | null)[] }
export interface WireGraph { nodes: WireNode[]; initializers: WireTensor[]; sparseNames: string[]; inputs: WireValueInfo[]; outputs: WireValueInfo[] }
export interface WireModel { irVersion: number; opsets: { domain: string; version: number }[]; graph: WireGraph; graphField: Span; graphContent: Span }

const MAX_DIMS = 64;

/** A protobuf int64 (a Long, or a number where long.js is absent) as a number; unsafe values stay unsafe. */
function int64(r: Reader): number {
  const v = r.int64() as unknown;
  return typeof v === 'number' ? v : (v as { toNumber(): number }).toNumber();
}

/** A repeated scalar field, packed (wire type 2) or not. */
function repeated(r: Reader, wire: number, one: () => number, into: number[]): void {
  if (wire !== 2) {
    into.push(one());
    return;
  }
  const end = sub(r, wire);
  while (r.pos < end) into.push(one());
  if (r.pos !== end) throw new ENormError('E_MODEL', 'a packed field overruns its length');
}

function entry(r: Reader, wire: number, into: Map<string, string>): void {
  let key = '';
  let value = '';
  fields(r, sub(r, wire), (n) => {
    if (n === F.entry.key) key = r.string();
    else if (n === F.entry.value) value = r.string();
    else return false;
    return true;
  });
  into.set(key, value);
}

function tensor(r: Reader, end: number): WireTensor {
  const t: WireTensor = { name: '', dims: [], dataType: 0, floatRuns: [], int32Data: [], int64Data: [], external: new Map(), dataLocation: 0 };
  const T = F.tensor;
  fields(r, end, (n, wire) => {
    switch (n) {
      case T.dims: repeated(r, wire, () => int64(r), t.dims); break;
      case T.dataType: t.dataType = r.int32(); break;
      case T.name: t.name = r.string(); break;
      case T.rawData: {
        const stop = sub(r, wire);
        if (t.raw) throw new ENormError('E_MODEL', `tensor ${quote(t.name)} has raw_data twice`);
        t.raw = { start: r.pos, length: stop - r.pos };
        r.pos = stop;
        break;
      }
      case T.floatData:
        if (wire === 5) {
          t.floatRuns.push({ start: r.pos, count: 1 });
          r.skip(4);
        } else {
          const stop = sub(r, wire);
          if ((stop - r.pos) % 4 !== 0) throw new ENormError('E_MODEL', `tensor ${quote(t.name)}: float_data is not a whole number of floats`);
          t.floatRuns.push({ start: r.pos, count: (stop - r.pos) / 4 });
          r.pos = stop;
        }
        break;
      case T.int32Data: repeated(r, wire, () => r.int32(), t.int32Data); break;
      case T.int64Data: repeated(r, wire, () => int64(r), t.int64Data); break;
      case T.externalData: entry(r, wire, t.external); break;
      case T.dataLocation: t.dataLocation = r.int32(); break;
      default: return false;
    }
    if (t.dims.length > MAX_DIMS) throw new ENormError('E_MODEL', `a tensor has more than ${MAX_DIMS} dimensions`);
    return true;
  });
  return t;
}

function attribute(r: Reader, end: number): WireAttribute {
  const a: WireAttribute = { name: '', type: 0, floats: [], ints: [], subgraph: false, outerReads: [] };
  const A = F.attribute;
  fields(r, end, (n, wire) => {
    switch (n) {
      case A.name: a.name = r.string(); break;
      case A.type: a.type = r.int32(); break;
      case A.f: a.f = r.float(); break;
      case A.i: a.i = int64(r); break;
      case A.s: a.s = r.string(); break;
      case A.t:
        if (a.t) throw new ENormError('E_MODEL', `attribute ${quote(a.name)} has two tensors`);
        a.t = tensor(r, sub(r, wire));
        break;
      case A.floats: repeated(r, wire, () => r.float(), a.floats); break;
      case A.ints: repeated(r, wire, () => int64(r), a.ints); break;
      case A.g:
      case A.graphs:
        a.subgraph = true;
        for (const name of outerReads(r, sub(r, wire), 1)) a.outerReads.push(name);
        break;
      default: return false;
    }
    return true;
  });
  if (GRAPH_ATTRIBUTE_TYPES.has(a.type)) a.subgraph = true;
  return a;
}

function node(r: Reader, tagStart: number, end: number): WireNode {
  const nd: WireNode = { name: '', opType: '', domain: '', inputs: [], outputs: [], attributes: [], field: { start: tagStart, end }, content: { start: r.pos, end }, outputFields: [], scopeReads: [] };
  const N = F.node;
  fields(r, end, (n, wire, fieldStart) => {
    switch (n) {
      case N.input: nd.inputs.push(r.string()); break;
      case N.output: nd.outputs.push(r.string()); nd.outputFields.push({ start: fieldStart, end: r.pos }); break;
      case N.name: nd.name = r.string(); break;
      case N.opType: nd.opType = r.string(); break;
      case N.domain: nd.domain = r.string(); break;
      case N.attribute: nd.attributes.push(attribute(r, sub(r, wire))); break;
      default: return false;
    }
    return true;
  });
  nd.scopeReads = [...new Set(nd.attributes.flatMap((a) => a.outerReads))];
  return nd;
}

function dimension(r: Reader, end: number): number | null {
  let value: number | null = null;
  fields(r, end, (n) => {
    if (n !== F.dim.value) return false;
    value = int64(r);
    return true;
  });
  return value;
}

function valueInfo(r: Reader, end: number): WireValueInfo {
  const v: WireValueInfo = { name: '', elemType: 0 };
  fields(r, end, (n, wire) => {
    if (n === F.valueInfo.name) v.name = r.string();
    else if (n === F.valueInfo.type) {
      fields(r, sub(r, wire), (tn, tw) => {
        if (tn !== F.type.tensorType) return false;
        fields(r, sub(r, tw), (en, ew) => {
          if (en === F.tensorType.elemType) v.elemType = r.int32();
          else if (en === F.tensorType.shape) {
            const dims: (number | null)[] = [];
            fields(r, sub(r, ew), (dn, dw) => {
              if (dn !== F.shape.dim) return false;
              if (dims.length >= MAX_DIMS) throw new ENormError('E_MODEL', `value ${quote(v.name)} has more than ${MAX_DIMS} dimensions`);
              dims.push(dimension(r, sub(r, dw)));
              return true;
            });
            v.dims = dims;
          } else return false;
          return true;
        });
        return true;
      });
    } else return false;
    return true;
  });
  return v;
}

function graph(r: Reader, end: number): WireGraph {
  const g: WireGraph = { nodes: [], initializers: [], sparseNames: [], inputs: [], outputs: [] };
  const G = F.graph;
  fields(r, end, (n, wire, tagStart) => {
    switch (n) {
      case G.node: g.nodes.push(node(r, tagStart, sub(r, wire))); break;
      case G.initializer: {
        const end = sub(r, wire);
        g.initializers.push({ ...tensor(r, end), field: { start: tagStart, end } });
        break;
      }
      case G.input: g.inputs.push(valueInfo(r, sub(r, wire))); break;
      case G.output: g.outputs.push(valueInfo(r, sub(r, wire))); break;
      case G.sparseInitializer: {
        let name = '';
        fields(r, sub(r, wire), (sn, sw) => {
          if (sn !== F.sparseTensor.values) return false;
          name = tensor(r, sub(r, sw)).name;
          return true;
        });
        g.sparseNames.push(name);
        break;
      }
      default: return false;
    }
    return true;
  });
  return g;
}

/** Decodes an ONNX ModelProto; throws ENormError E_MODEL (with protobufjs's reason) where it is not one. */
export function decodeModel(bytes: Uint8Array): WireModel {
  const r = ReaderClass.create(bytes);
  let irVersion = 0;
  const opsets: WireModel['opsets'] = [];
  let g: WireGraph | undefined;
  let graphField: Span = { start: 0, end: 0 };
  let graphContent: Span = graphField;
  fields(r, bytes.length, (n, wire, tagStart) => {
    if (n === F.model.irVersion && wire === 0) irVersion = int64(r);
    else if (n === F.model.graph) {
      if (g) throw new ENormError('E_MODEL', 'the model has two graphs');
      const end = sub(r, wire);
      graphField = { start: tagStart, end };
      graphContent = { start: r.pos, end };
      g = graph(r, end);
    } else if (n === F.model.opsetImport) {
      const o = { domain: '', version: 0 };
      fields(r, sub(r, wire), (on) => {
        if (on === F.opset.domain) o.domain = r.string();
        else if (on === F.opset.version) o.version = int64(r);
        else return false;
        return true;
      });
      opsets.push(o);
    } else return false;
    return true;
  });
  if (!g) throw new ENormError('E_MODEL', 'the file has no graph (is it an ONNX model?)');
  return { irVersion, opsets, graph: g, graphField, graphContent };
}
