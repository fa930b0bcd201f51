/**
 * Subgraphs (If branches, Loop and Scan bodies) walked for tensor names only. A subgraph may read
 * any tensor of the graphs around it without listing it as an input of its node, so the node that
 * holds it depends on those tensors too: the builder pins them (their units keep scale 1) and the
 * graph order places the node after their producers. Nothing inside a subgraph is decoded beyond
 * names: its tensors are never read, rescaled or copied, and its bytes are kept by the writer.
 *
 * outer reads of a graph = (names its nodes read or its outputs name, and the outer reads of its
 * nodes' subgraphs) minus (its initializers, inputs and node outputs). ONNX forbids a subgraph to
 * shadow an outer name, so what is left names tensors of an enclosing graph.
 */
import type protobuf from 'protobufjs/minimal.js';
import { ENormError } from '../../errors.js';
import { fields, sub } from './fields.js';
import { F } from './schema.js';

type Reader = protobuf.Reader;

/** Subgraphs nest at most this deep (the main graph is depth 0); deeper is E_MODEL. */
export const MAX_SUBGRAPH_DEPTH = 8;

/** The string field `num` of the message ending at `end` (the last one, '' if none). */
function nameField(r: Reader, end: number, num: number): string {
  let name = '';
  fields(r, end, (n) => {
    if (n !== num) return false;
    name = r.string();
    return true;
  });
  return name;
}

/** A sparse initializer's name: that of its `values` tensor. */
function sparseName(r: Reader, end: number): string {
  let name = '';
  fields(r, end, (n, wire) => {
    if (n !== F.sparseTensor.values) return false;
    name = nameField(r, sub(r, wire), F.tensor.name);
    return true;
  });
  return name;
}

/** Records what node (ending at `end`) reads and defines; its own subgraphs' outer reads count as reads. */
function nodeNames(r: Reader, end: number, depth: number, read: Set<string>, defined: Set<string>): void {
  fields(r, end, (n, wire) => {
    if (n === F.node.input) read.add(r.string());
    else if (n === F.node.output) defined.add(r.string());
    else if (n === F.node.attribute) {
      fields(r, sub(r, wire), (an, aw) => {
        if (an !== F.attribute.g && an !== F.attribute.graphs) return false;
        for (const name of outerReads(r, sub(r, aw), depth + 1)) read.add(name);
        return true;
      });
    } else return false;
    return true;
  });
}

/** The names the subgraph at depth `depth` (a GraphProto ending at `end`) reads from the graphs around it. */
export function outerReads(r: Reader, end: number, depth: number): Set<string> {
  if (depth > MAX_SUBGRAPH_DEPTH) throw new ENormError('E_MODEL', `subgraphs (If / Loop / Scan bodies) nest more than ${MAX_SUBGRAPH_DEPTH} deep`);
  const read = new Set<string>();
  const defined = new Set<string>();
  const G = F.graph;
  fields(r, end, (n, wire) => {
    const stop = n === G.node || n === G.initializer || n === G.input || n === G.output || n === G.sparseInitializer ? sub(r, wire) : 0;
    if (n === G.node) nodeNames(r, stop, depth, read, defined);
    else if (n === G.initializer) defined.add(nameField(r, stop, F.tensor.name));
    else if (n === G.sparseInitializer) defined.add(sparseName(r, stop));
    else if (n === G.input) defined.add(nameField(r, stop, F.valueInfo.name));
    else if (n === G.output) read.add(nameField(r, stop, F.valueInfo.name));
    else return false;
    return true;
  });
  read.delete('');
  for (const name of defined) read.delete(name);
  return read;
}
