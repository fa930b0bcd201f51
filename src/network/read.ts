import { clean, describeValue } from '../describe.js';
import { ENormError, layerError } from '../errors.js';
import type { Layer, Network } from './layers.js';

/**
 * Every field a layer kind reads. They are read through getters, inherited ones too (a layer may
 * be a class instance), together with the layer's own enumerable keys (fields added later).
 */
const LAYER_FIELDS = 'kind name inputs weight shape layout bias companions strides padding gamma beta mean variance epsilon axis alpha fn size rate order frozen groups'.split(' ');
const COMPANION_FIELDS = ['weight', 'bias', 'gamma', 'beta'];

/** Copies made here (the engine reads the network, then validation reads it again): returned as they are. */
const copies = new WeakSet<object>();

/**
 * A plain copy of the network description, each field read exactly once: the layers' own objects
 * become plain objects, and their arrays (shape, inputs, companion lists) plain arrays, while
 * every Float32Array is kept as is (it is what the engine rescales). Validation and planning then
 * see the same values, whatever getters or proxies the caller's objects have.
 * Throws E_GRAPH when the network is not a non-empty array of objects or a name is not a string,
 * E_TYPE when reading a field throws.
 */
export function readNetwork(net: unknown): Network {
  if (copies.has(net as object)) return net as Network;
  const layers = attempt(() => (Array.isArray(net) ? Array.from(net as unknown[]) : null), (m) => new ENormError('E_GRAPH', `the network could not be read: ${m}`));
  if (!layers) throw new ENormError('E_GRAPH', `the network must be an array of layers, got ${describeValue(net)}`);
  if (layers.length === 0) throw new ENormError('E_GRAPH', 'the network is empty: give at least one layer');
  const out = layers.map(readLayer);
  copies.add(out);
  return out;
}

/** fn(), or the error made from the message of what it threw. */
function attempt<T>(fn: () => T, error: (message: string) => ENormError): T {
  try {
    return fn();
  } catch (e) {
    throw error(describeValue(e instanceof Error ? e.message : e));
  }
}

function readLayer(layer: unknown, k: number): Layer {
  // Its name is not read yet: errors say `layer #k`.
  const at = { layerIndex: k };
  const readError = (what: string) => (m: string) => layerError('E_TYPE', at, `reading ${what} threw: ${m}`);
  const isObject = attempt(() => layer !== null && typeof layer === 'object' && !Array.isArray(layer) && !ArrayBuffer.isView(layer), readError('the layer'));
  if (!isObject) throw new ENormError('E_GRAPH', `layer #${k} must be an object with a 'kind', got ${describeValue(layer)}`, { layerIndex: k, layer: `#${k}` });
  const source = layer as Record<string, unknown>;
  const copy: Record<string, unknown> = {};
  for (const key of attempt(() => new Set([...LAYER_FIELDS, ...Object.keys(source)]), readError('its keys'))) {
    const value = attempt(() => copyField(source[key], key === 'companions'), readError(`'${clean(key)}'`));
    if (value !== undefined) copy[key] = value;
  }
  const name = copy.name;
  if (name !== undefined && (typeof name !== 'string' || name === '')) {
    throw layerError('E_GRAPH', at, `name must be a non-empty string, got ${describeValue(name)}`);
  }
  return copy as unknown as Layer;
}

/** Arrays become plain arrays; the `companions` object a plain object of copied fields; anything else as is. */
function copyField(value: unknown, companions: boolean): unknown {
  if (Array.isArray(value)) return Array.from(value);
  if (!companions || value === null || typeof value !== 'object' || ArrayBuffer.isView(value)) return value;
  const source = value as Record<string, unknown>;
  const copy: Record<string, unknown> = {};
  for (const key of new Set([...COMPANION_FIELDS, ...Object.keys(source)])) {
    const v = copyField(source[key], false);
    if (v !== undefined) copy[key] = v;
  }
  return copy;
}
