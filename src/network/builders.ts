import { defaultLayout, flattenOrderFor, kernelShape, layoutActivations, matchingLayout } from './geometry.js';
import type { BatchNormLayer, Conv2DLayer, ConvLayout, DenseLayer, DenseLayout, Layer, Network } from './layers.js';
import { mulberry32, normalArray, uniformArray } from './random.js';

/** He-initialised networks of the usual shapes, for tests, benchmarks and examples. */
interface BuildCommon {
  /** PRNG seed. Default 1. */
  seed?: number;
  /** Add biases (random, small). Default true. */
  bias?: boolean;
  /** Also allocate a random momentum companion for every weight and bias. Default false. */
  momentum?: boolean;
}

export interface MlpOptions extends BuildCommon {
  /** Widths from input to output, e.g. [784, 256, 10]. */
  sizes: number[];
  layout?: DenseLayout;
}

const heStd = (fanIn: number) => Math.sqrt(2 / fanIn);

class Builder {
  readonly rng: () => number;
  readonly net: Layer[] = [];
  constructor(readonly o: BuildCommon) {
    this.rng = mulberry32(o.seed ?? 1);
  }
  private withMomentum<T extends { companions?: object }>(layer: T, tensors: Record<string, Float32Array | undefined>): T {
    if (!this.o.momentum) return layer;
    const companions: Record<string, Float32Array> = {};
    for (const [role, t] of Object.entries(tensors)) if (t) companions[role] = normalArray(t.length, 0.01, this.rng);
    return { ...layer, companions };
  }
  bias(n: number): Float32Array | undefined {
    return this.o.bias === false ? undefined : normalArray(n, 0.05, this.rng);
  }
  dense(name: string, nIn: number, nOut: number, layout: DenseLayout = defaultLayout('dense'), inputs?: string[]): this {
    const weight = normalArray(nIn * nOut, heStd(nIn), this.rng);
    const bias = this.bias(nOut);
    const shape = kernelShape('dense', layout, { kh: 1, kw: 1, cin: nIn, cout: nOut }) as DenseLayer['shape'];
    const layer: DenseLayer = { kind: 'dense', name, weight, shape, layout, bias, inputs };
    this.net.push(this.withMomentum(layer, { weight, bias }));
    return this;
  }
  conv(name: string, k: number, nIn: number, nOut: number, o: { layout?: ConvLayout; strides?: number; inputs?: string[]; bias?: boolean } = {}): this {
    const layout = o.layout ?? defaultLayout('conv2d');
    const weight = normalArray(k * k * nIn * nOut, heStd(k * k * nIn), this.rng);
    const bias = o.bias === false ? undefined : this.bias(nOut);
    const layer: Conv2DLayer = {
      kind: 'conv2d', name, weight, layout, bias, padding: 'same', strides: o.strides ?? 1, inputs: o.inputs,
      shape: kernelShape('conv2d', layout, { kh: k, kw: k, cin: nIn, cout: nOut }) as Conv2DLayer['shape'],
    };
    this.net.push(this.withMomentum(layer, { weight, bias }));
    return this;
  }
  batchNorm(name: string, n: number): this {
    const gamma = uniformArray(n, 0.5, 1.5, this.rng);
    const beta = normalArray(n, 0.1, this.rng);
    const layer: BatchNormLayer = {
      kind: 'batch-norm', name, gamma, beta, mean: normalArray(n, 0.1, this.rng), variance: uniformArray(n, 0.5, 1.5, this.rng), epsilon: 1e-3,
    };
    this.net.push(this.withMomentum(layer, { gamma, beta }));
    return this;
  }
  push(layer: Layer): this {
    this.net.push(layer);
    return this;
  }
}

/** dense -> relu -> ... -> dense. */
export function mlp(o: MlpOptions): Network {
  const b = new Builder(o);
  for (let i = 0; i + 1 < o.sizes.length; i++) {
    b.dense(`dense${i + 1}`, o.sizes[i], o.sizes[i + 1], o.layout);
    if (i + 2 < o.sizes.length) b.push({ kind: 'relu', name: `relu${i + 1}` });
  }
  return b.net;
}

export interface ConvChainOptions extends BuildCommon {
  /** Channel counts from input to last output, e.g. [3, 64, 64]. */
  channels: number[];
  kernel?: number;
  layout?: ConvLayout;
}

/** conv -> relu -> conv -> ... (same padding, stride 1): a plain stack of convolutions. */
export function convChain(o: ConvChainOptions): Network {
  const b = new Builder(o);
  for (let i = 0; i + 1 < o.channels.length; i++) {
    b.conv(`conv${i + 1}`, o.kernel ?? 3, o.channels[i], o.channels[i + 1], { layout: o.layout });
    if (i + 2 < o.channels.length) b.push({ kind: 'relu', name: `relu${i + 1}` });
  }
  return b.net;
}

export interface VggOptions extends BuildCommon {
  inputChannels?: number;
  /** Input height = width. Default 32. */
  inputSize?: number;
  /** Conv widths per stage; each stage ends with a 2x2 max-pool. Default [[32, 32], [64, 64]]. */
  stages?: number[][];
  hidden?: number;
  classes?: number;
  batchNorm?: boolean;
  layout?: ConvLayout;
}

/** VGG-style: [conv3x3 (-> BN) -> relu]* -> maxpool per stage, flatten, dense -> relu -> dropout -> dense. */
export function vgg(o: VggOptions = {}): Network {
  const b = new Builder(o);
  const layout = o.layout ?? defaultLayout('conv2d');
  // The head follows the convolutions' convention: NCHW maps flatten as (c, h, w) into an 'oi' dense.
  const maps = layoutActivations('conv2d', layout);
  const stages = o.stages ?? [[32, 32], [64, 64]];
  let c = o.inputChannels ?? 3;
  let size = o.inputSize ?? 32;
  stages.forEach((widths, s) => {
    widths.forEach((w, i) => {
      const name = `s${s + 1}c${i + 1}`;
      b.conv(name, 3, c, w, { layout, bias: !o.batchNorm && o.bias !== false });
      if (o.batchNorm) b.batchNorm(`${name}/bn`, w);
      b.push({ kind: 'relu', name: `${name}/relu` });
      c = w;
    });
    b.push({ kind: 'max-pool', name: `pool${s + 1}`, size: 2 });
    size = Math.floor(size / 2);
  });
  const hidden = o.hidden ?? 128;
  b.push({ kind: 'flatten', name: 'flatten', order: flattenOrderFor(maps) });
  b.dense('fc1', size * size * c, hidden, matchingLayout('dense', maps));
  b.push({ kind: 'relu', name: 'fc1/relu' });
  b.push({ kind: 'dropout', name: 'dropout', rate: 0.5 });
  b.dense('fc2', hidden, o.classes ?? 10, matchingLayout('dense', maps));
  return b.net;
}

export interface ResNetOptions extends BuildCommon {
  inputChannels?: number;
  classes?: number;
  /** Width of the first stage (64 for ResNet-18); the stages are width x [1, 2, 4, 8]. */
  width?: number;
  /** 'cifar': 3x3 stem, no pooling (default). 'imagenet': 7x7/2 stem and 3x3/2 max-pool. */
  stem?: 'cifar' | 'imagenet';
  layout?: ConvLayout;
}

/**
 * ResNet-18: stem conv -> BN -> relu, four stages of two basic blocks
 * (conv3x3 -> BN -> relu -> conv3x3 -> BN, + shortcut, -> relu; 1x1/2 conv + BN projection
 * where the shape changes), global average pooling, dense head. Convs have no bias (BN follows).
 */
export function resnet18(o: ResNetOptions = {}): Network {
  const b = new Builder(o);
  const layout = o.layout ?? defaultLayout('conv2d');
  const width = o.width ?? 64;
  const imagenet = o.stem === 'imagenet';
  b.conv('stem', imagenet ? 7 : 3, o.inputChannels ?? 3, width, { layout, strides: imagenet ? 2 : 1, bias: false });
  b.batchNorm('stem/bn', width);
  b.push({ kind: 'relu', name: 'stem/relu' });
  let stream = 'stem/relu';
  if (imagenet) {
    b.push({ kind: 'max-pool', name: 'stem/pool', size: 3, strides: 2, padding: 'same' });
    stream = 'stem/pool';
  }
  let c = width;
  [1, 2, 4, 8].forEach((mult, s) => {
    const w = width * mult;
    for (let blk = 0; blk < 2; blk++) {
      const name = `stage${s + 1}.block${blk + 1}`;
      const strides = s > 0 && blk === 0 ? 2 : 1;
      b.conv(`${name}/conv1`, 3, c, w, { layout, strides, bias: false, inputs: [stream] });
      b.batchNorm(`${name}/bn1`, w);
      b.push({ kind: 'relu', name: `${name}/relu1` });
      b.conv(`${name}/conv2`, 3, w, w, { layout, bias: false });
      b.batchNorm(`${name}/bn2`, w);
      let shortcut = stream;
      if (strides !== 1 || c !== w) {
        b.conv(`${name}/proj`, 1, c, w, { layout, strides, bias: false, inputs: [stream] });
        b.batchNorm(`${name}/proj/bn`, w);
        shortcut = `${name}/proj/bn`;
      }
      b.push({ kind: 'add', name: `${name}/add`, inputs: [`${name}/bn2`, shortcut] });
      b.push({ kind: 'relu', name: `${name}/relu2` });
      stream = `${name}/relu2`;
      c = w;
    }
  });
  b.push({ kind: 'global-avg-pool', name: 'pool' });
  b.dense('head', c, o.classes ?? 10, matchingLayout('dense', layoutActivations('conv2d', layout)));
  return b.net;
}
