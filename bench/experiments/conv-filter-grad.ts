/**
 * A faster Conv2DBackpropFilter for tfjs-backend-cpu, the same sums in a cache-friendly order.
 * tfjs 4.22's cpu kernel reads every element through TensorBuffer.get() with the batch innermost,
 * which makes it about 95% of a conv net's training step. Here
 *   dW[kh, kw, ci, co] = sum over b, oh, ow of x[b, oh*sh + kh - top, ow*sw + kw - left, ci] * dy[b, oh, ow, co]
 * accumulates in float64, as tfjs's kernel does, and is rounded to float32 once.
 * NCHW falls through to tfjs's own kernel.
 */
import * as tf from '@tensorflow/tfjs';
import { KernelSwap } from './kernel-swap.js';

const swap = new KernelSwap('Conv2DBackpropFilter', 'cpu');

interface CpuBackend { data: { get(id: unknown): { values: Float32Array } }; makeTensorInfo(shape: number[], dtype: string, values: Float32Array): tf.TensorInfo }
interface FilterAttrs { strides: number | [number, number]; pad: 'valid' | 'same' | number; dataFormat: 'NHWC' | 'NCHW'; dimRoundingMode?: 'floor' | 'round' | 'ceil'; filterShape: [number, number, number, number] }

function filterGradient(args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): tf.TensorInfo {
  const x = args.inputs.x!;
  const dy = args.inputs.dy!;
  const attrs = args.attrs as unknown as FilterAttrs;
  if (attrs.dataFormat === 'NCHW') return swap.tfjs.kernelFunc(args as never) as tf.TensorInfo;
  const backend = args.backend as CpuBackend;
  const info = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], attrs.filterShape, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode, false, 'channelsLast');
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels, filterHeight, filterWidth, strideHeight, strideWidth } = info;
  const { top, left } = info.padInfo;
  const xs = backend.data.get(x.dataId).values;
  const dys = backend.data.get(dy.dataId).values;
  const sums = new Float64Array(filterHeight * filterWidth * inChannels * outChannels);
  for (let b = 0; b < batchSize; b++) {
    for (let oh = 0; oh < outHeight; oh++) {
      for (let ow = 0; ow < outWidth; ow++) {
        const dyAt = ((b * outHeight + oh) * outWidth + ow) * outChannels;
        for (let kh = 0; kh < filterHeight; kh++) {
          const ih = oh * strideHeight + kh - top;
          if (ih < 0 || ih >= inHeight) continue;
          for (let kw = 0; kw < filterWidth; kw++) {
            const iw = ow * strideWidth + kw - left;
            if (iw < 0 || iw >= inWidth) continue;
            const xAt = ((b * inHeight + ih) * inWidth + iw) * inChannels;
            const dwAt = (kh * filterWidth + kw) * inChannels * outChannels;
            for (let ci = 0; ci < inChannels; ci++) {
              const xv = xs[xAt + ci];
              if (xv === 0) continue; // post-ReLU inputs are mostly zeros
              const row = dwAt + ci * outChannels;
              for (let co = 0; co < outChannels; co++) sums[row + co] += xv * dys[dyAt + co];
            }
          }
        }
      }
    }
  }
  return backend.makeTensorInfo(info.filterShape, 'float32', Float32Array.from(sums));
}

/** Replaces the cpu backend's Conv2DBackpropFilter; idempotent. */
export function useFastConvFilterGradient(): void {
  swap.install(filterGradient as unknown as tf.KernelFunc);
}

/** Puts tfjs's own kernel back (for tests that compare the two). */
export function restoreConvFilterGradient(): void {
  swap.restore();
}
