/**
 * The --quantize report: per weight tensor (the kernels of dense and convolution layers; biases
 * and batch-norm parameters stay in float, as integer kernels keep them), the SQNR of symmetric
 * round-to-nearest quantisation before and after balancing, and the output SQNR of the
 * weight-quantised model against the float model on the check's inputs.
 */
import { outputUnitOf, outputUnits } from '../network/geometry.js';
import { isWeighted, layerName, type Network, type WeightedLayer } from '../network/layers.js';
import { quantize, weightSqnr } from '../quantize/quantize.js';
import type { DeviationCheck } from './check.js';

export interface QuantizationSettings {
  bits: 8 | 4;
  perChannel: boolean;
}

/** One network's quantisation figures: per kernel (network order) and on the outputs. */
export interface QuantSnapshot {
  tensors: number[];
  /** undefined when there is no check (--samples 0, or the check was skipped). */
  output: number | undefined;
}

export interface QuantizationReport extends QuantizationSettings {
  /** SQNR in dB; Infinity (null in --json) when quantisation is exact (e.g. an all-zero tensor). */
  tensors: { name: string; layer: string; sqnrBefore: number; sqnrAfter: number }[];
  /** Inputs the output SQNR was measured on; 0: not measured (outputSqnr* are null). */
  outputSamples: number;
  outputSqnrBefore: number | null;
  outputSqnrAfter: number | null;
  /** Why the output SQNR was not measured although there was a check: enorm's forward pass would not compute the model's function. */
  outputSqnrWithheld?: string;
}

const kernels = (net: Network) => net.filter(isWeighted);

/** The group (output channel) of each element and their count, or one group per tensor. */
function groupsOf(layer: WeightedLayer, perChannel: boolean): [number, (i: number) => number] {
  return perChannel ? [outputUnits(layer), outputUnitOf(layer)] : [1, () => 0];
}

/** The network with every kernel replaced by its quantised copy (other arrays shared, never written). */
export function quantizedNetwork(net: Network, q: QuantizationSettings): Network {
  return net.map((layer) => {
    if (!isWeighted(layer)) return layer;
    const [groups, groupOf] = groupsOf(layer, q.perChannel);
    return { ...layer, weight: Float32Array.from(quantize(layer.weight, q.bits, groups, groupOf)) } as WeightedLayer;
  });
}

/** The figures of `net` now; the output SQNR on `check`'s inputs when there is a check. */
export function quantSnapshot(net: Network, q: QuantizationSettings, check: DeviationCheck | undefined): QuantSnapshot {
  const tensors = kernels(net).map((layer) => weightSqnr(layer.weight, q.bits, ...groupsOf(layer, q.perChannel)));
  return { tensors, output: check?.outputSqnr(net, quantizedNetwork(net, q)) };
}

/**
 * The report: names from the format (matched by array identity: `names` lists the model's own
 * arrays), else '<layer>/weight'.
 */
export function quantizationReport(
  net: Network, q: QuantizationSettings, before: QuantSnapshot, after: QuantSnapshot, samples: number,
  names: { name: string; data: Float32Array }[] = [],
  withheld?: string,
): QuantizationReport {
  const byArray = new Map(names.map((n) => [n.data, n.name]));
  const layers = net.map((l, k) => [l, k] as const).filter(([l]) => isWeighted(l)) as [WeightedLayer, number][];
  const measured = before.output !== undefined && after.output !== undefined;
  return {
    ...q,
    tensors: layers.map(([layer, k], i) => ({
      name: byArray.get(layer.weight) ?? `${layerName(layer, k)}/weight`,
      layer: layerName(layer, k),
      sqnrBefore: before.tensors[i],
      sqnrAfter: after.tensors[i],
    })),
    outputSamples: measured ? samples : 0,
    outputSqnrBefore: measured ? before.output! : null,
    outputSqnrAfter: measured ? after.output! : null,
    ...(withheld ? { outputSqnrWithheld: withheld } : {}),
  };
}

/** Median of the finite per-tensor SQNR changes (after - before), NaN when there is none. */
export function medianGain(r: QuantizationReport): number {
  const gains = r.tensors.map((t) => t.sqnrAfter - t.sqnrBefore).filter(Number.isFinite).sort((a, b) => a - b);
  if (!gains.length) return NaN;
  const m = gains.length >> 1;
  return gains.length % 2 ? gains[m] : (gains[m - 1] + gains[m]) / 2;
}
