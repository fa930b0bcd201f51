import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { ENormError } from '../../src/errors.js';
import { ENormCallback, enormStep } from '../../src/tfjs/index.js';
import { allBits, bits, checkFrozenKept, he, trainedChain } from './models.js';

beforeAll(() => tf.setBackend('cpu'));

describe('enormStep leaves layers that another model runs alone', () => {
  it('B = tf.sequential built from A.layers[0] plus new layers: B bit-identical, the shared layer too', async () => {
    const a = await trainedChain();
    const b = tf.sequential({ layers: [a.model.layers[0], tf.layers.dense({ units: 5, ...he(7) })] });
    await checkFrozenKept(a, [0], new RegExp(`layer '${a.model.layers[0].name}' is frozen \\(shared with another model\\)`), b);
  });

  it('a functional B calling A\'s layer objects on its own input', async () => {
    const a = await trainedChain();
    const input = tf.input({ shape: [8] });
    const h = a.model.layers[1].apply(a.model.layers[0].apply(input)) as tf.SymbolicTensor;
    const b = tf.model({ inputs: input, outputs: tf.layers.dense({ units: 4, ...he(8) }).apply(h) as tf.SymbolicTensor });
    await checkFrozenKept(a, [0, 1], /is frozen \(shared with another model\)/, b);
  });

  it("a head on A's inner output: that layer and everything upstream of it", async () => {
    const a = await trainedChain();
    const head = tf.layers.dense({ units: 4, ...he(9) }).apply(a.model.layers[1].output as tf.SymbolicTensor) as tf.SymbolicTensor;
    const b = tf.model({ inputs: a.model.inputs, outputs: head });
    await checkFrozenKept(a, [0, 1], /is frozen \(shared with another model\)/, b);
  });

  it('A used as a layer of B (B.add(A), or A called on a new input): every layer of A is shared', async () => {
    for (const nest of [
      (a: tf.LayersModel) => tf.sequential({ layers: [a, tf.layers.dense({ units: 4, ...he(10) })] }),
      (a: tf.LayersModel) => {
        const input = tf.input({ shape: [8] });
        return tf.model({ inputs: input, outputs: tf.layers.dense({ units: 4, ...he(10) }).apply(a.apply(input)) as tf.SymbolicTensor });
      },
    ]) {
      const { model, optimizer, x } = await trainedChain();
      const b = nest(model);
      const [weights, predictions] = [await allBits(model), await bits(b.predict(x) as tf.Tensor)];
      const info = await enormStep(model, { optimizer });
      expect(info.groups).toBe(0);
      expect(info.barriers.map((r) => r.layer)).toEqual(model.layers.map((l) => l.name));
      expect(await allBits(model)).toEqual(weights);
      expect(await bits(b.predict(x) as tf.Tensor)).toEqual(predictions);
    }
  });

  it('the plan is rebuilt once a layer becomes shared', async () => {
    const a = await trainedChain();
    const first = await enormStep(a.model, { optimizer: a.optimizer });
    expect(first.barriers).toEqual([]);
    expect(await enormStep(a.model, { optimizer: a.optimizer })).toBe(first);
    const b = tf.sequential({ layers: [a.model.layers[0], tf.layers.dense({ units: 5, ...he(7) })] });
    await checkFrozenKept(a, [0], /shared with another model/, b);
    expect(first.groups).toBe(3);
    expect((await enormStep(a.model, { optimizer: a.optimizer })).groups).toBe(2);
  });
});

describe('enormStep leaves non-trainable layers alone', () => {
  it('layer.trainable = false: its weights bit-identical, the rest balanced, and the plan follows the flag', async () => {
    const a = await trainedChain();
    const first = await enormStep(a.model, { optimizer: a.optimizer });
    a.model.layers[2].trainable = false;
    await checkFrozenKept(a, [2], new RegExp(`layer '${a.model.layers[2].name}' is frozen \\(trainable: false\\)`));
    a.model.layers[2].trainable = true;
    const again = await enormStep(a.model, { optimizer: a.optimizer });
    expect(again).not.toBe(first);
    expect(again.barriers).toEqual([]);
    expect(again.groups).toBe(first.groups);
  });

  it('model.trainable = false freezes every layer: nothing changes', async () => {
    const { model, optimizer } = await trainedChain();
    model.trainable = false;
    const before = await allBits(model);
    const info = await enormStep(model, { optimizer });
    expect(info.groups).toBe(0);
    expect(info.barriers.map((b) => b.layer)).toEqual(model.layers.map((l) => l.name));
    expect(info.barriers[0].reason).toMatch(new RegExp(`frozen \\(trainable: false \\(model '${model.name}'\\)\\)`));
    expect(await allBits(model)).toEqual(before);
  });

  it('a frozen batch norm in a conv net: gamma and beta bit-identical, the convolutions after it still balance', async () => {
    const model = tf.sequential({
      layers: [
        tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', inputShape: [6, 6, 2], ...he(11) }),
        tf.layers.batchNormalization({ gammaInitializer: tf.initializers.randomUniform({ minval: 0.5, maxval: 1.5, seed: 12 }) }),
        tf.layers.reLU(),
        tf.layers.conv2d({ filters: 5, kernelSize: 3, padding: 'same', activation: 'relu', ...he(13) }),
        tf.layers.conv2d({ filters: 5, kernelSize: 3, padding: 'same', activation: 'relu', ...he(14) }),
        tf.layers.globalAveragePooling2d({}),
        tf.layers.dense({ units: 3, ...he(15) }),
      ],
    });
    const optimizer = tf.train.momentum(0.01, 0.9);
    model.compile({ optimizer, loss: 'meanSquaredError' });
    const x = tf.randomNormal([4, 6, 6, 2], 0, 1, 'float32', 63);
    await model.fit(x, tf.randomNormal([4, 3], 0, 1, 'float32', 64), { epochs: 2, verbose: 0, shuffle: false });
    model.layers[1].trainable = false;
    await checkFrozenKept({ model, optimizer, x }, [1], new RegExp(`layer '${model.layers[1].name}' is frozen \\(trainable: false\\)`));
    const info = await enormStep(model, { optimizer });
    expect(info.barriers.map((b) => b.layer)).toEqual([model.layers[1].name]);
  });
  it('a frozen layer norm in an MLP: gamma and beta bit-identical, the dense layers around it still balance', async () => {
    const model = tf.sequential({
      layers: [
        tf.layers.dense({ units: 6, inputShape: [5], activation: 'relu', ...he(21) }),
        tf.layers.dense({ units: 7, ...he(22) }),
        tf.layers.layerNormalization({ gammaInitializer: tf.initializers.randomUniform({ minval: 0.5, maxval: 1.5, seed: 23 }) }),
        tf.layers.reLU(),
        tf.layers.dense({ units: 6, activation: 'relu', ...he(24) }),
        tf.layers.dense({ units: 3, ...he(25) }),
      ],
    });
    const optimizer = tf.train.momentum(0.01, 0.9);
    model.compile({ optimizer, loss: 'meanSquaredError' });
    const x = tf.randomNormal([4, 5], 0, 1, 'float32', 26);
    await model.fit(x, tf.randomNormal([4, 3], 0, 1, 'float32', 27), { epochs: 2, verbose: 0, shuffle: false });
    model.layers[2].trainable = false;
    await checkFrozenKept({ model, optimizer, x }, [2], new RegExp(`layer '${model.layers[2].name}' is frozen \\(trainable: false\\)`));
  });
});

describe('frozen layers and constraints', () => {
  it('a non-trainable layer with a kernel constraint is accepted (it is never rescaled) and kept bit-identical', async () => {
    const model = tf.sequential({
      layers: [
        tf.layers.dense({ units: 16, inputShape: [8], activation: 'relu', ...he(33) }),
        tf.layers.dense({ units: 12, activation: 'relu', ...he(34) }),
        tf.layers.dense({ units: 10, activation: 'relu', ...he(35) }),
        tf.layers.dense({ units: 6, activation: 'relu', kernelConstraint: tf.constraints.maxNorm({ maxValue: 2 }), trainable: false, name: 'capped_frozen', ...he(31) }),
        tf.layers.dense({ units: 3, ...he(32) }),
      ],
    });
    const optimizer = tf.train.momentum(0.01, 0.9);
    model.compile({ optimizer, loss: 'meanSquaredError' });
    const x = tf.randomNormal([8, 8], 0, 1, 'float32', 65);
    await checkFrozenKept({ model, optimizer, x }, [3], /layer 'capped_frozen' is frozen \(trainable: false\)/);
    model.layers[3].trainable = true; // now enorm would rescale it, and tfjs would re-apply the constraint
    const err = await enormStep(model, { optimizer }).catch((e) => e);
    expect(err).toBeInstanceOf(ENormError);
    expect(err.message).toMatch(/layer 'capped_frozen' has a kernelConstraint/);
  });
});

describe('enormStep on a disposed model', () => {
  const refused = async (model: tf.LayersModel, optimizer: tf.Optimizer, message: RegExp) => {
    const err = await enormStep(model, { optimizer }).catch((e) => e);
    expect(err).toBeInstanceOf(ENormError);
    expect(err.code).toBe('E_STATE');
    expect(err.message).toMatch(message);
  };

  it('model.dispose(): E_STATE naming the model (also after the plan was built)', async () => {
    for (const planned of [false, true]) {
      const { model, optimizer } = await trainedChain();
      if (planned) await enormStep(model, { optimizer });
      model.dispose();
      await refused(model, optimizer, new RegExp(`model '${model.name}' is disposed`));
    }
  });

  it('a disposed weight or optimizer state: E_STATE naming it, and no other variable changes', async () => {
    const { model, optimizer } = await trainedChain();
    await enormStep(model, { optimizer });
    const kept = model.weights.filter((w) => w !== model.layers[2].weights[0]);
    const before = await Promise.all(kept.map((w) => bits(w.read())));
    model.layers[2].weights[0].dispose();
    await refused(model, optimizer, new RegExp(`weight '${model.layers[2].weights[0].originalName}' is disposed`));
    expect(await Promise.all(kept.map((w) => bits(w.read())))).toEqual(before);

    const other = await trainedChain();
    await enormStep(other.model, { optimizer: other.optimizer });
    const weights = await allBits(other.model);
    other.optimizer.dispose();
    await refused(other.model, other.optimizer, /the optimizer's momentum of '.*' is disposed/);
    expect(await allBits(other.model)).toEqual(weights);
  });
});

describe('ENormCallback refuses before training starts', () => {
  it.each([
    ['adam', () => tf.train.adam(0.01)],
    ['rmsprop', () => tf.train.rmsprop(0.01)],
    ['adagrad', () => tf.train.adagrad(0.01)],
  ])('%s: fit rejects with an ENormError and every weight is bit-identical', async (_, make) => {
    const model = tf.sequential({ layers: [tf.layers.dense({ units: 6, inputShape: [4], activation: 'relu', ...he(21) }), tf.layers.dense({ units: 2, ...he(22) })] });
    model.compile({ optimizer: make(), loss: 'meanSquaredError' });
    const before = await allBits(model);
    const x = tf.randomNormal([8, 4], 0, 1, 'float32', 71);
    const y = tf.randomNormal([8, 2], 0, 1, 'float32', 72);
    let batches = 0;
    const counter = new (class extends tf.Callback { override async onBatchBegin() { batches++; } })();
    const err = await model.fit(x, y, { epochs: 2, batchSize: 4, verbose: 0, callbacks: [counter, new ENormCallback()] }).catch((e) => e);
    expect(err).toBeInstanceOf(ENormError);
    expect(err.message).toMatch(/second moments .* use tf\.train\.sgd or tf\.train\.momentum/);
    expect(batches).toBe(0);
    expect(await allBits(model)).toEqual(before);
    await model.fit(x, y, { epochs: 1, verbose: 0 }); // the model is not left mid-training
  });

  it("cycleOn: 'webgpu' without the webgpu backend is refused at onTrainBegin", async () => {
    const model = tf.sequential({ layers: [tf.layers.dense({ units: 4, inputShape: [3], activation: 'relu' }), tf.layers.dense({ units: 2 })] });
    model.compile({ optimizer: tf.train.sgd(0.1), loss: 'meanSquaredError' });
    const before = await allBits(model);
    const err = await model.fit(tf.ones([4, 3]), tf.ones([4, 2]), { verbose: 0, callbacks: [new ENormCallback({ cycleOn: 'webgpu' })] }).catch((e) => e);
    expect(err).toBeInstanceOf(ENormError);
    expect(err.message).toMatch(/needs the tfjs webgpu backend; the active backend is 'cpu'/);
    expect(await allBits(model)).toEqual(before);
  });

  it('a layer enorm cannot handle is refused at onTrainBegin too, before any weight changes', async () => {
    const model = tf.sequential({ layers: [tf.layers.dense({ units: 4, inputShape: [3], activation: 'relu', kernelConstraint: tf.constraints.maxNorm({ maxValue: 2 }), name: 'capped' }), tf.layers.dense({ units: 2 })] });
    model.compile({ optimizer: tf.train.sgd(0.1), loss: 'meanSquaredError' });
    const before = await allBits(model);
    const err = await model.fit(tf.ones([4, 3]), tf.ones([4, 2]), { verbose: 0, callbacks: [new ENormCallback()] }).catch((e) => e);
    expect(err).toBeInstanceOf(ENormError);
    expect(err.message).toMatch(/layer 'capped' has a kernelConstraint/);
    expect(await allBits(model)).toEqual(before);
  });
});
