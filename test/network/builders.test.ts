import { describe, expect, it } from 'vitest';
import { convChain, mlp, resnet18, vgg } from '../../src/network/builders.js';
import type { Network } from '../../src/network/layers.js';
import { validateLayers } from '../../src/network/validate.js';

/** Trainable parameters: weights, biases, gamma, beta. */
const params = (net: Network) => validateLayers(net).filter((t) => !t.tensor.startsWith('companion')).reduce((a, t) => a + t.data.length, 0);

describe('builders', () => {
  it('ResNet-18 (CIFAR stem, 10 classes) has the canonical 11,173,962 parameters', () => {
    expect(params(resnet18())).toBe(11_173_962);
  });
  it('ResNet-18 ImageNet stem, 1000 classes: 11,689,512 parameters', () => {
    expect(params(resnet18({ stem: 'imagenet', classes: 1000 }))).toBe(11_689_512);
  });
  it('MLP and conv chain sizes; seeds are deterministic; momentum companions', () => {
    expect(params(mlp({ sizes: [784, 500, 10], bias: false }))).toBe(784 * 500 + 500 * 10);
    expect(params(convChain({ channels: [3, 8, 8], bias: false }))).toBe(9 * 3 * 8 + 9 * 8 * 8);
    const a = mlp({ sizes: [5, 4, 3], seed: 3, momentum: true });
    const b = mlp({ sizes: [5, 4, 3], seed: 3, momentum: true });
    expect(a).toEqual(b);
    expect(validateLayers(a).filter((t) => t.tensor.startsWith('companion'))).toHaveLength(4);
  });
  it('VGG-style net validates in both layouts', () => {
    expect(() => validateLayers(vgg({ batchNorm: true }))).not.toThrow();
    expect(() => validateLayers(vgg({ layout: 'oihw' }))).not.toThrow();
  });
});
