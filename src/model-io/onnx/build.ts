/**
 * The state of turning an ONNX graph into an enorm network (ops.ts does it per op): which enorm
 * layer produces each ONNX tensor, the constants a layer claims as its weights, and the two ways
 * an op enorm does not rescale is kept exact.
 *
 * The cut: an op enorm cannot express is left out of the network. Every tensor it reads from a
 * layer is pinned (an identity layer that nothing reads reads it: an output, whose units keep
 * scale 1), and the tensors it writes enter the network as fresh input layers (units that are
 * never rescaled). So the op sees exactly the values it saw before, and so does everything after it.
 */
import { ENormError } from '../../errors.js';
import type { Layer, TensorRole } from '../../network/layers.js';
import { quote } from '../text.js';
import type { Constant, GraphFacts } from './graph.js';
import { nodeLabel, nodeReads } from './graph.js';
import type { Dims } from './shapes.js';
import { FLOAT_TYPES, locate, readPayload, readValues, type Payload } from './tensors.js';
import type { WireNode } from './wire.js';

/** A tensor enorm may rescale, and where its bytes are. */
export interface WeightBinding { name: string; layer: string; role: TensorRole; payload: Payload; data: Float32Array }
/** An op (or a tensor) that keeps its units' scale at 1, and why. */
export interface OnnxBarrier { node: string; op: string; reason: string }

/** The Wasm engine's memory (4 GiB) in float32 elements. */
const MAX_WEIGHT_ELEMENTS = 2 ** 30;

export class Builder {
  readonly network: Layer[] = [];
  readonly bindings: WeightBinding[] = [];
  readonly barriers: OnnxBarrier[] = [];
  /**
   * Why enorm's own float64 forward pass would not compute this model's function exactly (a
   * dilation, or pads that are neither none nor TF 'same'): the rescaling is still exact, since it
   * does not depend on the spatial geometry, but figures from enorm's forward pass are not reported.
   */
  readonly forwardDiffers: string[] = [];
  /** Nodes merged into an earlier layer (the bias Add after a MatMul). */
  readonly absorbed = new Set<number>();
  private readonly layerOf = new Map<string, string>();
  private readonly inputLayers = new Set<string>();
  private readonly pinned = new Set<string>();
  private readonly taken: Set<string>;
  private elements = 0;

  constructor(
    readonly facts: GraphFacts,
    readonly nodes: WireNode[],
    private readonly bytes: Uint8Array,
    private readonly externals: Map<string, Uint8Array>,
    /** What is known of each tensor's shape (shapes.ts). */
    readonly dims: Map<string, Dims> = new Map(),
  ) {
    this.taken = new Set(facts.tensorNames);
    for (const name of facts.inputs) this.source(name);
  }

  private readonly layerNames = new Set<string>();
  /**
   * A layer name no other layer has: `base`, or `base#2`, `base#3`, ... A layer that holds a tensor
   * is named by it; a made-up name (`derived`) also avoids every tensor name of the graph.
   */
  private unique(base: string, derived = false): string {
    let name = base;
    for (let i = 2; this.layerNames.has(name) || (derived && this.taken.has(name)); i++) name = `${base}#${i}`;
    this.layerNames.add(name);
    return name;
  }

  add(layer: Layer, output: string): void {
    const name = this.unique(output);
    this.network.push({ ...layer, name } as Layer);
    this.layerOf.set(output, name);
  }

  /** The layer that holds tensor `name`: its producer, or a new input layer (graph inputs, constants, cut outputs). */
  source(name: string): string {
    const known = this.layerOf.get(name);
    if (known !== undefined) return known;
    const layer = this.unique(name);
    this.network.push({ kind: 'input', name: layer });
    this.layerOf.set(name, layer);
    this.inputLayers.add(layer);
    return layer;
  }

  /** Pins the units of tensor `name` (scale 1) with an identity output layer reading it. */
  pin(name: string): void {
    const layer = this.layerOf.get(name);
    if (name === '' || layer === undefined || this.inputLayers.has(layer) || this.pinned.has(name)) return;
    this.pinned.add(name);
    const sink = this.unique(`${name}:kept`, true);
    this.network.push({ kind: 'identity', name: sink, inputs: [layer] });
  }

  /** Leaves node `k` out of the network (the cut above), reported as a barrier; what its subgraphs read is pinned too. */
  cut(k: number, reason: string): void {
    const n = this.nodes[k];
    nodeReads(n).forEach((t) => this.pin(t));
    this.barriers.push({ node: n.name || n.outputs[0] || `#${k}`, op: n.opType, reason });
  }

  constant(name: string | undefined): Constant | undefined {
    return name ? this.facts.constants.get(name) : undefined;
  }

  /** The numbers of a small constant (shapes, Clip bounds, PReLU slopes), or undefined. */
  values(name: string | undefined): number[] | undefined {
    const c = this.constant(name);
    if (!c) return undefined;
    return c.values ?? (c.tensor ? readValues(this.bytes, c.tensor) : undefined);
  }

  /** dims of a float constant that lives in a tensor, or undefined (not a constant, not float). */
  floatDims(name: string | undefined): number[] | undefined {
    const t = this.constant(name)?.tensor;
    return t && FLOAT_TYPES.has(t.dataType) ? t.dims : undefined;
  }

  /**
   * Claims float constant `name` as tensor `role` of layer `layer`: a fresh float32 copy, and the
   * reason the layer must stay frozen, if any (a constant read elsewhere too, a graph output, or
   * stored where it cannot be rewritten in place).
   */
  claim(name: string, layer: string, role: TensorRole, k: number): { data: Float32Array; frozen?: string; payload?: Payload } {
    const c = this.constant(name);
    const t = c?.tensor;
    if (!c || !t || !FLOAT_TYPES.has(t.dataType)) throw new ENormError('E_MODEL', `${nodeLabel(this.nodes[k], k)}: ${quote(name)} is not a float constant`);
    const externalSize = (loc: string) => this.externals.get(loc)?.length;
    const where = locate(t, externalSize);
    this.elements += t.dims.reduce((a, b) => a * b, 1);
    if (this.elements > MAX_WEIGHT_ELEMENTS) {
      throw new ENormError('E_MEMORY', `${nodeLabel(this.nodes[k], k)}: the weights pass ${MAX_WEIGHT_ELEMENTS} float32 elements (4 GiB, the engine's memory) at ${quote(name)}`);
    }
    let data: Float32Array;
    let frozen: string | undefined;
    if ('runs' in where) {
      data = readPayload(where.file === undefined ? this.bytes : (this.externals.get(where.file) as Uint8Array), where);
    } else {
      data = Float32Array.from(readValues(this.bytes, t) ?? []);
      frozen = where.reason;
    }
    const uses = this.facts.uses.get(name) ?? 0;
    if (uses > 1) frozen ??= `ONNX ${c.from === 'initializer' ? 'initializer' : 'constant'} ${quote(name)} is read ${uses} times (shared): it is not rescaled`;
    return { data, frozen, payload: 'runs' in where ? where : undefined };
  }

  /** Adds a weighted layer (or batch norm) and binds its claimed tensors for writing back, unless frozen. */
  weighted(k: number, layer: Layer, output: string, claims: { role: TensorRole; name: string }[], frozenWhy?: string): void {
    const label = output;
    const got = claims.map((c) => ({ ...c, ...this.claim(c.name, label, c.role, k) }));
    const frozen = frozenWhy ?? got.find((g) => g.frozen)?.frozen;
    const arrays = Object.fromEntries(got.map((g) => [g.role, g.data]));
    this.add({ ...layer, ...arrays, ...(frozen ? { frozen } : {}) } as Layer, output);
    const name = this.layerOf.get(output) as string;
    if (frozen) {
      this.barriers.push({ node: this.nodes[k].name || output, op: this.nodes[k].opType, reason: frozen });
      return;
    }
    for (const g of got) this.bindings.push({ name: g.name, layer: name, role: g.role, payload: g.payload as Payload, data: g.data });
  }

  /** Pins every graph output that a layer holds (the runtime returns them as they were). */
  finish(): void {
    for (const name of this.facts.outputs) this.pin(name);
  }
}
