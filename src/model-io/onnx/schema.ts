/**
 * The part of the ONNX schema (onnx/onnx.proto, IR version 10) that enorm reads, as field numbers
 * for the wire-format reader (wire.ts) and as a protobufjs JSON descriptor (ONNX_SCHEMA) for code
 * that encodes models (the tests' builder). The reader walks the wire format itself with
 * protobufjs's Reader: protobufjs's reflection decoders are generated with `new Function`, which
 * edge runtimes (workerd) refuse, and the writer needs the byte position of every tensor payload.
 * Fields the reader does not list are skipped, and kept byte for byte by the writer.
 */

/** Field numbers, per message. */
export const F = {
  model: { irVersion: 1, graph: 7, opsetImport: 8 },
  opset: { domain: 1, version: 2 },
  graph: { node: 1, name: 2, initializer: 5, input: 11, output: 12, sparseInitializer: 15 },
  node: { input: 1, output: 2, name: 3, opType: 4, attribute: 5, domain: 7 },
  attribute: { name: 1, f: 2, i: 3, s: 4, t: 5, g: 6, floats: 7, ints: 8, graphs: 11, type: 20 },
  tensor: { dims: 1, dataType: 2, floatData: 4, int32Data: 5, int64Data: 7, name: 8, rawData: 9, externalData: 13, dataLocation: 14 },
  sparseTensor: { values: 1 },
  entry: { key: 1, value: 2 },
  valueInfo: { name: 1, type: 2 },
  type: { tensorType: 1 },
  tensorType: { elemType: 1, shape: 2 },
  shape: { dim: 1 },
  dim: { value: 1, param: 2 },
} as const;

/** TensorProto.DataType values enorm reads. */
export const DataType = { FLOAT: 1, INT32: 6, INT64: 7, FLOAT16: 10, DOUBLE: 11 } as const;
/** AttributeProto.AttributeType: a subgraph (If / Loop / Scan bodies). */
export const GRAPH_ATTRIBUTE_TYPES = new Set([5, 10]);
/** TensorProto.DataLocation.EXTERNAL. */
export const EXTERNAL = 1;

const str = (id: number) => ({ type: 'string', id });
const rep = (type: string, id: number) => ({ rule: 'repeated', type, id });

/** The messages as a protobufjs JSON descriptor (`protobuf.Root.fromJSON(ONNX_SCHEMA)`), package 'onnx'. */
export const ONNX_SCHEMA = {
  nested: {
    onnx: {
      nested: {
        ModelProto: {
          fields: {
            irVersion: { type: 'int64', id: 1 }, producerName: str(2), producerVersion: str(3), domain: str(4),
            modelVersion: { type: 'int64', id: 5 }, docString: str(6), graph: { type: 'GraphProto', id: 7 },
            opsetImport: rep('OperatorSetIdProto', 8), metadataProps: rep('StringStringEntryProto', 14),
          },
        },
        OperatorSetIdProto: { fields: { domain: str(1), version: { type: 'int64', id: 2 } } },
        StringStringEntryProto: { fields: { key: str(1), value: str(2) } },
        GraphProto: {
          fields: {
            node: rep('NodeProto', 1), name: str(2), initializer: rep('TensorProto', 5), docString: str(10),
            input: rep('ValueInfoProto', 11), output: rep('ValueInfoProto', 12), valueInfo: rep('ValueInfoProto', 13),
            sparseInitializer: rep('SparseTensorProto', 15),
          },
        },
        NodeProto: {
          fields: {
            input: rep('string', 1), output: rep('string', 2), name: str(3), opType: str(4),
            attribute: rep('AttributeProto', 5), docString: str(6), domain: str(7),
          },
        },
        AttributeProto: {
          fields: {
            name: str(1), f: { type: 'float', id: 2 }, i: { type: 'int64', id: 3 }, s: { type: 'bytes', id: 4 },
            t: { type: 'TensorProto', id: 5 }, g: { type: 'GraphProto', id: 6 }, floats: rep('float', 7),
            ints: rep('int64', 8), strings: rep('bytes', 9), tensors: rep('TensorProto', 10), graphs: rep('GraphProto', 11),
            docString: str(13), type: { type: 'int32', id: 20 },
          },
        },
        TensorProto: {
          fields: {
            dims: rep('int64', 1), dataType: { type: 'int32', id: 2 }, floatData: rep('float', 4), int32Data: rep('int32', 5),
            stringData: rep('bytes', 6), int64Data: rep('int64', 7), name: str(8), rawData: { type: 'bytes', id: 9 },
            doubleData: rep('double', 10), docString: str(12), externalData: rep('StringStringEntryProto', 13),
            dataLocation: { type: 'int32', id: 14 },
          },
        },
        SparseTensorProto: { fields: { values: { type: 'TensorProto', id: 1 }, indices: { type: 'TensorProto', id: 2 }, dims: rep('int64', 3) } },
        ValueInfoProto: { fields: { name: str(1), type: { type: 'TypeProto', id: 2 }, docString: str(3) } },
        TypeProto: { fields: { tensorType: { type: 'TypeProtoTensor', id: 1 }, denotation: str(6) } },
        TypeProtoTensor: { fields: { elemType: { type: 'int32', id: 1 }, shape: { type: 'TensorShapeProto', id: 2 } } },
        TensorShapeProto: { fields: { dim: rep('Dimension', 1) } },
        Dimension: { fields: { dimValue: { type: 'int64', id: 1 }, dimParam: str(2), denotation: str(3) } },
      },
    },
  },
};
