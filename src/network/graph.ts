import { describeValue } from '../describe.js';
import { ENormError, layerError, safeName } from '../errors.js';
import { layerName, type Layer } from './layers.js';

/** Marks the network's implicit input (a network with no 'input' layer). */
export const NETWORK_INPUT = -1;

export interface ResolvedGraph {
  /** inputs[k]: indices of the layers layer k reads (NETWORK_INPUT for the implicit input). */
  inputs: number[][];
  /** consumers[k]: indices of the layers that read layer k. */
  consumers: number[][];
  /** Layers nothing reads: the network's outputs, in layer order. */
  outputs: number[];
  /** Display names, `name` or `#index`. */
  names: string[];
}

const MULTI_INPUT = new Set(['add', 'concat']);

/** Resolves `inputs` names to layer indices; every edge points backwards, so the list is topologically ordered. */
export function resolveGraph(net: readonly Layer[]): ResolvedGraph {
  if (!Array.isArray(net) || net.length === 0) {
    throw new ENormError('E_GRAPH', 'the network is empty: give at least one layer');
  }
  const names = net.map((l, k) => layerName(l ?? {}, k));
  const byName = new Map<string, number>();
  net.forEach((layer, k) => {
    if (layer === null || typeof layer !== 'object' || Array.isArray(layer)) {
      throw new ENormError('E_GRAPH', `layer #${k} must be an object with a 'kind', got ${describeValue(layer)}`, { layerIndex: k, layer: `#${k}` });
    }
    if (layer.name !== undefined) {
      if (typeof layer.name !== 'string' || layer.name === '') {
        throw layerError('E_GRAPH', { layerIndex: k }, 'name must be a non-empty string');
      }
      if (byName.has(layer.name)) {
        throw new ENormError('E_GRAPH', `layer '${safeName(layer.name)}' (#${k}): the name is already used by layer #${byName.get(layer.name)}`, { layerIndex: k, layer: layer.name });
      }
      byName.set(layer.name, k);
    }
  });

  const inputs: number[][] = net.map((layer, k) => {
    const where = { layerIndex: k, layer: names[k] };
    const who = () => `layer '${safeName(names[k])}' (${safeName(describeValue(layer.kind))})`;
    if (layer.kind === 'input') {
      if (layer.inputs !== undefined && layer.inputs.length > 0) {
        throw layerError('E_GRAPH', where, 'an input layer reads nothing');
      }
      return [];
    }
    if (layer.inputs === undefined) {
      if (MULTI_INPUT.has(layer.kind)) {
        throw new ENormError('E_GRAPH', `${who()} needs 'inputs': the names of the layers it merges`, where);
      }
      return [k === 0 ? NETWORK_INPUT : k - 1];
    }
    if (!Array.isArray(layer.inputs) || layer.inputs.length === 0) {
      throw layerError('E_GRAPH', where, `'inputs' must be a non-empty array of layer names`);
    }
    if (!MULTI_INPUT.has(layer.kind) && layer.inputs.length !== 1) {
      throw new ENormError('E_GRAPH', `${who()} reads exactly one input, got ${layer.inputs.length}`, where);
    }
    if (MULTI_INPUT.has(layer.kind) && layer.inputs.length < 2) {
      throw new ENormError('E_GRAPH', `${who()} merges at least two inputs, got ${layer.inputs.length}`, where);
    }
    return layer.inputs.map((ref: unknown) => {
      if (typeof ref !== 'string') {
        throw layerError('E_GRAPH', where, `'inputs' must be layer names (strings), got ${describeValue(ref)}`);
      }
      const j = byName.get(ref);
      if (j === undefined) {
        throw layerError('E_GRAPH', where, `input '${safeName(ref)}' is not the name of any layer`);
      }
      if (j >= k) {
        throw layerError('E_GRAPH', where, `input '${safeName(ref)}' comes after it; list layers in topological order`);
      }
      return j;
    });
  });

  const hasInputLayer = net.some((l) => l.kind === 'input');
  if (hasInputLayer && inputs.some((ins) => ins.includes(NETWORK_INPUT))) {
    throw new ENormError('E_GRAPH', `layer '${safeName(names[0])}' has no inputs although the network declares input layers`, { layerIndex: 0, layer: names[0] });
  }

  const consumers: number[][] = net.map(() => []);
  inputs.forEach((ins, k) => ins.forEach((j) => { if (j !== NETWORK_INPUT) consumers[j].push(k); }));
  const outputs = net.map((_, k) => k).filter((k) => consumers[k].length === 0 && net[k].kind !== 'input');
  return { inputs, consumers, outputs, names };
}
