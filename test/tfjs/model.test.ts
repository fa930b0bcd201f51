/**
 * bindModel reads a live model through the shared topology mapper, without the byte codec: the same
 * network as parsing the model's saved files, with each array tied to its variable and each momentum
 * accumulator attached as its weight's companion.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { ENormError } from '../../src/errors.js';
import * as codec from '../../src/model-io/tfjs/codec.js';
import * as tfjsFiles from '../../src/model-io/tfjs/index.js';
import type { Layer, Network } from '../../src/network/layers.js';
import { accumulatorsOf, bindModel, valueOf, type BoundModel } from '../../src/tfjs/model.js';
import { MODELS, trained } from './models.js';

// Every entry of the file reader and its byte codec, spied on (and still run): bindModel must call none.
vi.mock('../../src/model-io/tfjs/index.js', async (original) => {
  const actual = await original<typeof import('../../src/model-io/tfjs/index.js')>();
  return { ...actual, parseTfjsModel: vi.fn(actual.parseTfjsModel) };
});
vi.mock('../../src/model-io/tfjs/codec.js', async (original) => {
  const actual = await original<typeof import('../../src/model-io/tfjs/codec.js')>();
  return { ...actual, readManifest: vi.fn(actual.readManifest), decodeWeights: vi.fn(actual.decodeWeights) };
});

beforeAll(() => tf.setBackend('cpu'));

/** The model's model.json and weights as a saved pair would hold them, parsed by the file reader. */
async function parsedFiles(model: tf.LayersModel): Promise<Network> {
  let network: Network | undefined;
  await model.save(tf.io.withSaveHandler(async (a) => {
    const modelJson = JSON.parse(JSON.stringify({ format: a.format, modelTopology: a.modelTopology, weightsManifest: [{ paths: ['weights.bin'], weights: a.weightSpecs }] }));
    const weightData = joined(a.weightData!);
    network = tfjsFiles.parseTfjsModel(modelJson, weightData).network;
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
  }));
  return network!;
}

/** Copies every variable's current value into the array bound to it (what the host path does each step). */
async function stageValues({ variableOf }: BoundModel): Promise<void> {
  for (const [data, variable] of variableOf) data.set((await valueOf(variable).data()) as Float32Array);
}

/** A layer without its companions and frozen mark, for comparison with a parsed file's. */
function plain(layer: Layer): Layer {
  const { companions: _c, frozen: _f, ...rest } = layer as Layer & { companions?: unknown; frozen?: unknown };
  return rest as Layer;
}

type Companion = Float32Array | Float32Array[] | undefined;

/** The tensors of a weighted layer that enorm rescales, with their companions. */
function rescaled(layer: Layer): { role: string; data: Float32Array; companion: Companion }[] {
  const pairs: [string, Float32Array | undefined, Companion][] = layer.kind === 'batch-norm'
    ? [['gamma', layer.gamma, layer.companions?.gamma], ['beta', layer.beta, layer.companions?.beta]]
    : layer.kind === 'dense' || layer.kind === 'conv2d' || layer.kind === 'depthwise-conv2d'
      ? [['weight', layer.weight, layer.companions?.weight], ['bias', layer.bias, layer.companions?.bias]]
      : [];
  return pairs.flatMap(([role, data, companion]) => (data ? [{ role, data, companion }] : []));
}

/** One buffer of the save handler's weight data (tfjs may hand over several). */
function joined(data: ArrayBuffer | ArrayBuffer[]): ArrayBuffer {
  const parts = ([] as ArrayBuffer[]).concat(data);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  parts.reduce((at, p) => (out.set(new Uint8Array(p), at), at + p.byteLength), 0);
  return out.buffer;
}

beforeEach(() => {
  vi.mocked(tfjsFiles.parseTfjsModel).mockClear();
  vi.mocked(codec.readManifest).mockClear();
  vi.mocked(codec.decodeWeights).mockClear();
});

describe('bindModel', () => {
  it.each(MODELS)('$name: the same network as parsing its saved files, momentum attached, no codec call', async ({ make, shape }) => {
    const { model, optimizer } = await trained(make, shape, 2);
    const accumulators = await accumulatorsOf(optimizer);
    const bound = bindModel(model, accumulators);
    expect(tfjsFiles.parseTfjsModel).not.toHaveBeenCalled();
    expect(codec.readManifest).not.toHaveBeenCalled();
    expect(codec.decodeWeights).not.toHaveBeenCalled();

    await stageValues(bound);
    const parsed = await parsedFiles(model);
    expect(tfjsFiles.parseTfjsModel).toHaveBeenCalledTimes(1); // the spy does see the file path
    // Kinds, names, inputs, shapes, layouts, strides, paddings, and (staged) values.
    expect(bound.network.map(plain)).toEqual(parsed.map(plain));
    expect(bound.network.every((l) => !('frozen' in l) || l.frozen === undefined)).toBe(true);

    let attached = 0;
    for (const layer of bound.network) {
      for (const { role, data, companion } of rescaled(layer)) {
        const weight = bound.variableOf.get(data);
        expect(weight, `${layer.name} ${role}`).toBeDefined();
        const momentum = accumulators.get(weight!.name);
        expect(momentum, `${layer.name} ${role}: trained with momentum`).toBeDefined();
        if (!(companion instanceof Float32Array)) throw new Error(`${layer.name} ${role}: no companion`);
        expect(companion).not.toBe(data);
        expect(bound.variableOf.get(companion)).toBe(momentum);
        expect(Array.from(companion)).toEqual(Array.from((await momentum!.data()) as Float32Array));
        attached++;
      }
    }
    expect(attached).toBe(model.trainableWeights.length);
  });

  it('marks a non-trainable layer frozen and leaves the rest as the files give them', async () => {
    const { model, optimizer } = await trained(MODELS[1].make, MODELS[1].shape, 1);
    const bn = model.layers.find((l) => l.getClassName() === 'BatchNormalization')!;
    bn.trainable = false;
    const bound = bindModel(model, await accumulatorsOf(optimizer));
    await stageValues(bound);
    const parsed = await parsedFiles(model);
    expect(bound.network.map(plain)).toEqual(parsed.map(plain));
    expect(bound.network.filter((l) => 'frozen' in l && l.frozen !== undefined).map((l) => [l.name, 'frozen' in l && l.frozen])).toEqual([[bn.name, 'trainable: false']]);
  });

  it('ties each array to a model weight or an accumulator: one array per variable, zero-filled until staged', async () => {
    const { model, optimizer } = await trained(MODELS[1].make, MODELS[1].shape, 1);
    const accumulators = await accumulatorsOf(optimizer);
    const { variableOf } = bindModel(model, accumulators);
    const known = new Set<unknown>([...model.weights, ...accumulators.values()]);
    for (const [data, variable] of variableOf) {
      expect(known.has(variable)).toBe(true);
      expect(data.length).toBe(variable.shape.reduce((a: number, d) => a * (d ?? 0), 1));
      expect(data.every((v) => v === 0)).toBe(true); // values stay in the variables until staged
    }
    expect(new Set(variableOf.values()).size).toBe(variableOf.size); // one array per variable
    expect(variableOf.size).toBe(model.weights.length + accumulators.size);
  });

  it('refuses a weight that is not float32 with E_TYPE, naming the weight and its layer', async () => {
    const model = MODELS[0].make();
    const bias = model.layers[1].weights[1];
    Object.defineProperty(bias, 'dtype', { value: 'int32' });
    const err = (() => {
      try {
        bindModel(model, new Map());
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ENormError);
    expect((err as ENormError).code).toBe('E_TYPE');
    expect((err as ENormError).message).toMatch(new RegExp(`weight '${bias.originalName}' has dtype int32; enorm rescales float32 weights only`));
    expect((err as ENormError).details.layer).toBe(model.layers[1].name);
    expect(tfjsFiles.parseTfjsModel).not.toHaveBeenCalled();
  });
});
