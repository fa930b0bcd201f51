/** The layer list of a tfjs modelTopology: entries, inbound nodes, topological order, input shapes. */
import type { Layer } from '../../network/layers.js';
import { clean, describe, fail, isObject, quote, type Json } from '../shared.js';

export interface TopoLayer {
  name: string;
  className: string;
  config: Json;
  /** tfjs names of the layers it reads (functional models). */
  inbound: string[];
}

export interface LayerEntry { name: string; className: string; config: Json; raw: Json }

export function unwrapTopology(src: string, topology: Json): { className: string; config: unknown } {
  const t = isObject(topology.model_config) ? topology.model_config : topology;
  const className = t.class_name;
  if (className !== 'Sequential' && className !== 'Model' && className !== 'Functional') {
    fail('E_MODEL', `${src}: modelTopology has class_name ${describe(className)}; enorm reads Sequential and functional (Model) layers models`);
  }
  return { className, config: t.config };
}

export function readLayerEntry(src: string, raw: unknown, i: number): LayerEntry {
  if (!isObject(raw) || typeof raw.class_name !== 'string') fail('E_MODEL', `${src}: layers[${i}] has no class_name`);
  const className = raw.class_name;
  const config = isObject(raw.config) ? raw.config : fail('E_MODEL', `${src}: layers[${i}] (${clean(className)}) has no config object`);
  const name = typeof raw.name === 'string' ? raw.name : config.name;
  if (typeof name !== 'string' || name === '') fail('E_MODEL', `${src}: layers[${i}] (${clean(className)}) has no name`);
  return { name, className, config, raw };
}

export function readInbound(src: string, entry: { name: string; raw: Json }): string[] {
  const nodes = entry.raw.inbound_nodes;
  const layer = `layer ${quote(entry.name)}`;
  if (nodes === undefined || (Array.isArray(nodes) && nodes.length === 0)) return [];
  if (!Array.isArray(nodes)) fail('E_MODEL', `${src}: ${layer} has malformed inbound_nodes`, entry.name);
  if (nodes.length > 1) {
    fail('E_MODEL', `${src}: ${layer} is called at ${nodes.length} places (a shared layer), which enorm does not support`, entry.name);
  }
  const node = nodes[0];
  if (!Array.isArray(node)) {
    fail('E_MODEL', `${src}: ${layer} has inbound_nodes in an unsupported format (expected tfjs / Keras 2 [[layer, node, tensor, kwargs], ...])`, entry.name);
  }
  return node.map((ref: unknown) => {
    if (!Array.isArray(ref) || typeof ref[0] !== 'string') fail('E_MODEL', `${src}: ${layer} has a malformed inbound node ${describe(ref)}`, entry.name);
    if ((ref[1] ?? 0) !== 0 || (ref[2] ?? 0) !== 0) {
      fail('E_MODEL', `${src}: ${layer} reads output ${describe(ref.slice(0, 3))}; enorm supports single-output, single-use layers only`, entry.name);
    }
    return ref[0];
  });
}

/**
 * Stable topological order (tfjs lists functional layers in order already; hand-written files may not):
 * Kahn's algorithm, always taking the ready layer that comes first in the file (a binary min-heap of
 * file positions), so a file already in order is kept exactly and any other order is the same one the
 * "first ready layer in file order" rule gives. O((layers + edges) log layers).
 */
export function topoSort(src: string, layers: TopoLayer[]): TopoLayer[] {
  const n = layers.length;
  const position = new Map<string, number>();
  layers.forEach((l, i) => position.set(l.name, i));
  const pending = new Int32Array(n); // inbound edges not yet emitted, one per reference (an Add of x and x counts 2)
  const readers: number[][] = layers.map(() => []);
  layers.forEach((l, i) => {
    for (const ref of l.inbound) {
      const j = position.get(ref);
      if (j === undefined) fail('E_MODEL', `${src}: layer ${quote(l.name)} reads ${quote(ref)}, which is not a layer of the model`, l.name);
      readers[j].push(i);
      pending[i]++;
    }
  });
  const heap = new MinHeap(n);
  for (let i = 0; i < n; i++) if (pending[i] === 0) heap.push(i);
  const out: TopoLayer[] = [];
  while (heap.size > 0) {
    const i = heap.pop();
    out.push(layers[i]);
    for (const r of readers[i]) if (--pending[r] === 0) heap.push(r);
  }
  if (out.length < n) {
    let stuck = 0;
    while (pending[stuck] === 0) stuck++;
    fail('E_MODEL', `${src}: the layers form a cycle (layer ${quote(layers[stuck].name)} is on or after one)`, layers[stuck].name);
  }
  return out;
}

/** A binary min-heap of small non-negative integers (at most `capacity` held). */
class MinHeap {
  private readonly items: Int32Array;
  size = 0;
  constructor(capacity: number) {
    this.items = new Int32Array(Math.max(1, capacity));
  }
  push(x: number): void {
    const a = this.items;
    let i = this.size++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (a[parent] <= x) break;
      a[i] = a[parent];
      i = parent;
    }
    a[i] = x;
  }
  pop(): number {
    const a = this.items;
    const top = a[0];
    const last = a[--this.size];
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= this.size) break;
      const child = left + 1 < this.size && a[left + 1] < a[left] ? left + 1 : left;
      if (a[child] >= last) break;
      a[i] = a[child];
      i = child;
    }
    a[i] = last;
    return top;
  }
}

export function batchShape(src: string, name: string, config: Json): (number | null)[] | undefined {
  const s = config.batch_input_shape ?? config.batch_shape;
  if (s === undefined || s === null) return undefined;
  if (!Array.isArray(s) || s.length < 2 || s.length > 8 || !s.every((d) => d === null || (Number.isSafeInteger(d) && d > 0))) {
    fail('E_MODEL', `${src}: layer ${quote(name)} has a malformed batch_input_shape ${describe(s)}`, name);
  }
  return s as (number | null)[];
}

export function inputLayer(name: string, batch: (number | null)[]): Layer {
  const shape = batch.slice(1);
  return shape.every((d) => d !== null) ? { kind: 'input', name, shape: shape as number[] } : { kind: 'input', name };
}
