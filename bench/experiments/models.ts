/**
 * The experiments' networks. Weight decay lambda is an L2 regularizer of lambda / 2 on every kernel
 * and BN/GN gamma, so that its gradient is lambda * w, as in SGD's weight_decay.
 */
import * as tf from '@tensorflow/tfjs';
import { groupNormalization } from './group-norm.js';

export type Norm = 'none' | 'bn' | 'gn';

export interface FcSpec {
  /** k: intermediate width x width layers between 784 -> width and width -> 10. */
  depth: number;
  width: number;
  norm: Norm;
  weightDecay: number;
  seed: number;
}

/**
 * The initializer seed of a net's layer. tfjs reads a seed of 0 as none (rand_util: `seed ? seed :
 * Math.random()`), so layer 0 of seed 0 (the lr searches' seed) gets -1, which no other layer uses.
 */
export const initSeed = (seed: number, layer: number) => seed * 1000 + layer || -1;

const decay = (lambda: number) => (lambda > 0 ? tf.regularizers.l2({ l2: lambda / 2 }) : undefined);

/** bnMomentum: the moving averages' decay (tfjs's default 0.99; PyTorch's default is tfjs 0.9). */
function normLayer(norm: Norm, channels: number, weightDecay: number, bnMomentum = 0.99): tf.layers.Layer[] {
  if (norm === 'bn') return [tf.layers.batchNormalization({ gammaRegularizer: decay(weightDecay), momentum: bnMomentum })];
  if (norm === 'gn') return [groupNormalization({ groups: Math.max(1, channels / 4) })];
  return [];
}

/** 784 -> width -> k x (width -> width) -> 10, ReLU, no biases, He init; norm layers before each ReLU. */
export function fcNet({ depth, width, norm, weightDecay, seed }: FcSpec): tf.Sequential {
  const layers: tf.layers.Layer[] = [];
  for (let i = 0; i <= depth; i++) {
    layers.push(tf.layers.dense({
      units: width, inputShape: i === 0 ? [784] : undefined, useBias: false,
      kernelInitializer: tf.initializers.heNormal({ seed: initSeed(seed, i) }), kernelRegularizer: decay(weightDecay),
    }));
    layers.push(...normLayer(norm, width, weightDecay), tf.layers.reLU());
  }
  layers.push(tf.layers.dense({ units: 10, useBias: false, activation: 'softmax', kernelInitializer: tf.initializers.heNormal({ seed: initSeed(seed, 999) }), kernelRegularizer: decay(weightDecay) }));
  return tf.sequential({ layers });
}

export interface ConvSpec {
  /** Channels of the three 3x3 convolutions (the second and third with stride 2). */
  channels: [number, number, number];
  /** Average-pool the 28x28 input by this factor first (1: none). */
  downsample: number;
  norm: Norm;
  weightDecay: number;
  /** Decay of BN's moving averages. */
  bnMomentum: number;
  seed: number;
}

/**
 * A scaled-down version of the paper's fully convolutional net: optionally an average pooling of the
 * input, then three 3x3 convolutions (stride 1, 2, 2)
 * with biases, each followed by the norm layer and ReLU, a 1x1 convolution to the 10 classes and
 * global average pooling.
 */
export function convNet({ channels, downsample, norm, weightDecay, bnMomentum, seed }: ConvSpec): tf.Sequential {
  const layers: tf.layers.Layer[] = [];
  if (downsample > 1) layers.push(tf.layers.averagePooling2d({ poolSize: downsample, inputShape: [28, 28, 1] }));
  channels.forEach((filters, i) => {
    layers.push(tf.layers.conv2d({
      filters, kernelSize: 3, strides: i === 0 ? 1 : 2, padding: 'same', inputShape: i === 0 && downsample <= 1 ? [28, 28, 1] : undefined,
      useBias: norm === 'none', kernelInitializer: tf.initializers.heNormal({ seed: initSeed(seed, i) }), kernelRegularizer: decay(weightDecay),
    }));
    layers.push(...normLayer(norm, filters, weightDecay, bnMomentum), tf.layers.reLU());
  });
  layers.push(
    tf.layers.conv2d({ filters: 10, kernelSize: 1, kernelInitializer: tf.initializers.heNormal({ seed: initSeed(seed, 99) }), kernelRegularizer: decay(weightDecay) }),
    tf.layers.globalAveragePooling2d({}),
    tf.layers.softmax(),
  );
  return tf.sequential({ layers });
}
