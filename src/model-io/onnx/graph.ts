/**
 * The graph-level facts the op mapping needs, from a decoded ONNX graph: the nodes in topological
 * order (ONNX asks exporters to sort, not every one does), the constants
 * (initializers and Constant nodes) by name, how many times each tensor is read, and who reads it
 * (a node with subgraphs also reads the outer tensors they name: nodeReads).
 * Malformed graphs (a tensor produced twice, read but never produced, a cycle) are E_MODEL.
 */
import { ENormError } from '../../errors.js';
import { quote } from '../text.js';
import type { WireAttribute, WireGraph, WireNode, WireTensor } from './wire.js';

/** A constant tensor: an initializer or a Constant node's `value` (patchable) or its scalar / list forms (values only). */
export interface Constant {
  name: string;
  /** 'initializer', or the Constant node's display name. */
  from: string;
  tensor?: WireTensor;
  /** value_float(s) / value_int(s) of a Constant node. */
  values?: number[];
}

export interface GraphFacts {
  order: number[];
  constants: Map<string, Constant>;
  /** How many node inputs (and graph outputs) name each tensor. */
  uses: Map<string, number>;
  /** The nodes that read each tensor, in node order. */
  consumers: Map<string, number[]>;
  /** The graph's inputs that are not initializers. */
  inputs: string[];
  outputs: Set<string>;
  /** Every tensor name in the graph (to pick layer names that do not collide). */
  tensorNames: Set<string>;
}

export function nodeLabel(n: WireNode, index: number): string {
  return `ONNX node ${quote(n.name || n.outputs[0] || `#${index}`)} (${quote(n.opType)})`;
}

function constantFromNode(n: WireNode, index: number): Constant {
  const name = n.outputs[0] ?? '';
  const from = n.name || `Constant #${index}`;
  const a: WireAttribute | undefined = n.attributes[0];
  if (n.attributes.length !== 1 || !a) return { name, from };
  if (a.name === 'value' && a.t) return { name, from, tensor: a.t };
  if (a.name === 'value_float' && a.f !== undefined) return { name, from, values: [a.f] };
  if (a.name === 'value_int' && a.i !== undefined) return { name, from, values: [a.i] };
  if (a.name === 'value_floats') return { name, from, values: a.floats };
  if (a.name === 'value_ints') return { name, from, values: a.ints };
  return { name, from }; // sparse or string values: a constant enorm does not read
}

/** What node `n` reads: its inputs, then the outer tensors its subgraphs read (If / Loop / Scan bodies, scope.ts). */
export function nodeReads(n: WireNode): string[] {
  return n.scopeReads.length === 0 ? n.inputs : [...n.inputs, ...n.scopeReads];
}

export function graphFacts(g: WireGraph): GraphFacts {
  const constants = new Map<string, Constant>();
  const producer = new Map<string, number>();
  const tensorNames = new Set<string>();
  const claim = (name: string, what: string) => {
    if (name === '') return;
    if (tensorNames.has(name)) throw new ENormError('E_MODEL', `ONNX tensor ${quote(name)} is defined twice (${what})`);
    tensorNames.add(name);
  };
  for (const t of g.initializers) {
    if (t.name === '') throw new ENormError('E_MODEL', 'an ONNX initializer has no name');
    claim(t.name, 'initializer');
    constants.set(t.name, { name: t.name, from: 'initializer', tensor: t });
  }
  for (const s of g.sparseNames) { claim(s, 'sparse initializer'); constants.set(s, { name: s, from: 'sparse initializer' }); }
  const inputs = g.inputs.map((v) => v.name).filter((name) => !constants.has(name));
  inputs.forEach((name) => claim(name, 'graph input'));
  g.nodes.forEach((n, k) => {
    n.outputs.forEach((o) => { claim(o, `output of ${nodeLabel(n, k)}`); if (o !== '') producer.set(o, k); });
    if (n.opType === 'Constant' && (n.domain === '' || n.domain === 'ai.onnx') && n.outputs[0]) constants.set(n.outputs[0], constantFromNode(n, k));
  });

  const uses = new Map<string, number>();
  const consumers = new Map<string, number[]>();
  const deps: number[][] = g.nodes.map(() => []);
  g.nodes.forEach((n, k) => {
    for (const name of nodeReads(n)) {
      if (name === '') continue;
      if (!tensorNames.has(name)) throw new ENormError('E_MODEL', `${nodeLabel(n, k)} reads ${quote(name)}, which no node, initializer or graph input defines`);
      uses.set(name, (uses.get(name) ?? 0) + 1);
      const list = consumers.get(name) ?? [];
      if (list[list.length - 1] !== k) list.push(k);
      consumers.set(name, list);
      const p = producer.get(name);
      if (p !== undefined) deps[k].push(p);
    }
  });
  const outputs = new Set<string>();
  for (const v of g.outputs) {
    if (!tensorNames.has(v.name)) throw new ENormError('E_MODEL', `graph output ${quote(v.name)} is not defined by any node, initializer or input`);
    outputs.add(v.name);
    uses.set(v.name, (uses.get(v.name) ?? 0) + 1);
  }
  return { order: topologicalOrder(g.nodes, deps), constants, uses, consumers, inputs, outputs, tensorNames };
}

/**
 * A topological order that keeps a sorted graph's order: nodes in index order, each after the
 * producers of its inputs (an iterative depth-first walk, so a long chain cannot overflow the stack).
 */
function topologicalOrder(nodes: WireNode[], deps: number[][]): number[] {
  const state = nodes.map(() => 0); // 0 unvisited, 1 on the walk's path, 2 placed
  const order: number[] = [];
  for (let root = 0; root < nodes.length; root++) {
    if (state[root] !== 0) continue;
    const stack: [number, number][] = [[root, 0]];
    state[root] = 1;
    while (stack.length > 0) {
      const top = stack[stack.length - 1];
      const [k, next] = top;
      if (next < deps[k].length) {
        top[1]++;
        const d = deps[k][next];
        if (state[d] === 1) throw new ENormError('E_MODEL', `the ONNX graph has a cycle through ${nodeLabel(nodes[d], d)}`);
        if (state[d] === 0) { state[d] = 1; stack.push([d, 0]); }
      } else {
        state[k] = 2;
        order.push(k);
        stack.pop();
      }
    }
  }
  return order;
}
