/**
 * Hand-built tfjs layers-model files for the CLI and parser tests: JSON objects plus their
 * weight bytes, written to a fresh temporary folder. Weights come from a seeded generator.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mulberry32 } from '../../src/network/random.js';

export interface ModelFiles {
  modelJson: Record<string, any>;
  weights: Uint8Array;
}

interface Spec { name: string; shape: number[] }

/** Assembles model.json from a topology and (name, shape) weight specs, filling each weight uniformly in [-scale, scale). */
function assemble(topology: Record<string, unknown>, specs: Spec[], seed: number, scale = 0.5, constant?: number): ModelFiles {
  const rng = mulberry32(seed);
  const total = specs.reduce((n, s) => n + s.shape.reduce((a, b) => a * b, 1), 0);
  const values = new Float32Array(total);
  for (let i = 0; i < total; i++) values[i] = constant ?? (2 * rng() - 1) * scale;
  return {
    modelJson: {
      format: 'layers-model',
      generatedBy: 'test',
      modelTopology: topology,
      weightsManifest: [{ paths: ['weights.bin'], weights: specs.map((s) => ({ name: s.name, shape: s.shape, dtype: 'float32' })) }],
    },
    weights: new Uint8Array(values.buffer),
  };
}

/**
 * Sequential MLP: Dense layers of `sizes[1..]` units with relu (linear last), input width sizes[0]; `declared` overrides
 * batch_input_shape; `constant` sets every weight and bias to that value instead of seeded uniform values.
 */
export function sequentialMlp(sizes: number[], options: { declared?: (number | null)[]; seed?: number; scale?: number; constant?: number } = {}): ModelFiles {
  const layers = [];
  const specs: Spec[] = [];
  for (let i = 1; i < sizes.length; i++) {
    const name = `dense_${i}`;
    const config: Record<string, unknown> = { name, units: sizes[i], activation: i === sizes.length - 1 ? 'linear' : 'relu', use_bias: true };
    if (i === 1) config.batch_input_shape = options.declared ?? [null, sizes[0]];
    layers.push({ class_name: 'Dense', config });
    specs.push({ name: `${name}/kernel`, shape: [sizes[i - 1], sizes[i]] }, { name: `${name}/bias`, shape: [sizes[i]] });
  }
  return assemble({ class_name: 'Sequential', config: { name: 'mlp', layers } }, specs, options.seed ?? 1, options.scale, options.constant);
}

/** Sequential conv net: Conv2D 3x3 (cin -> filters, same) + relu, GlobalAveragePooling2D, Dense(units); declared input [h, w, cin]. */
export function sequentialConvNet(declared: [number, number, number], filters = 8, units = 4): ModelFiles {
  const cin = declared[2];
  const layers = [
    { class_name: 'Conv2D', config: { name: 'conv', filters, kernel_size: [3, 3], strides: [1, 1], padding: 'same', activation: 'relu', use_bias: true, batch_input_shape: [null, ...declared] } },
    { class_name: 'GlobalAveragePooling2D', config: { name: 'gap' } },
    { class_name: 'Dense', config: { name: 'fc', units, activation: 'linear', use_bias: true } },
  ];
  const specs = [
    { name: 'conv/kernel', shape: [3, 3, cin, filters] }, { name: 'conv/bias', shape: [filters] },
    { name: 'fc/kernel', shape: [filters, units] }, { name: 'fc/bias', shape: [units] },
  ];
  return assemble({ class_name: 'Sequential', config: { name: 'conv', layers } }, specs, 2);
}

/**
 * Functional chain of `blocks` blocks on a width-`width` input: Dense(width) -> ReLU -> Add(with the
 * block's input), so 3 layers per block plus the input layer. Layers are listed in file order
 * `order` (default: topological) to exercise the sort.
 */
export function functionalChain(blocks: number, width = 1, order?: (layers: unknown[]) => unknown[]): ModelFiles {
  const layers: Record<string, unknown>[] = [{ class_name: 'InputLayer', name: 'x', config: { name: 'x', batch_input_shape: [null, width] }, inbound_nodes: [] }];
  const specs: Spec[] = [];
  let prev = 'x';
  for (let b = 0; b < blocks; b++) {
    const d = `d${b}`; const r = `r${b}`; const a = `a${b}`;
    layers.push({ class_name: 'Dense', name: d, config: { name: d, units: width, activation: 'linear', use_bias: true }, inbound_nodes: [[[prev, 0, 0, {}]]] });
    layers.push({ class_name: 'ReLU', name: r, config: { name: r }, inbound_nodes: [[[d, 0, 0, {}]]] });
    layers.push({ class_name: 'Add', name: a, config: { name: a }, inbound_nodes: [[[r, 0, 0, {}], [prev, 0, 0, {}]]] });
    specs.push({ name: `${d}/kernel`, shape: [width, width] }, { name: `${d}/bias`, shape: [width] });
    prev = a;
  }
  const topology = {
    class_name: 'Model',
    config: { name: 'chain', layers: order ? order(layers) : layers, input_layers: [['x', 0, 0]], output_layers: [[prev, 0, 0]] },
  };
  // Small weights keep the residual sums of long chains finite.
  return assemble(topology, specs, 3, 0.5 / Math.max(1, Math.sqrt(blocks)));
}

/** Writes model.json + weights.bin into a fresh temporary folder; returns the model.json path. */
export async function writeModel(files: ModelFiles | { modelJsonText: string; weights: Uint8Array }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'enorm-model-'));
  const text = 'modelJsonText' in files ? files.modelJsonText : JSON.stringify(files.modelJson);
  await writeFile(join(dir, 'model.json'), text);
  await writeFile(join(dir, 'weights.bin'), files.weights);
  return join(dir, 'model.json');
}
