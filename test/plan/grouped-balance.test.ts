/**
 * Balancing through a grouped convolution (conv -> relu -> grouped conv, groups 2 -> relu -> conv), in
 * both layouts, on every host backend: the function is kept, the energy goes down, the engine matches
 * the float64 reference, and the reference matches the one of the same network with the grouped
 * kernel written as an ungrouped, block-diagonal one (zeros outside the blocks: they add nothing to
 * any unit's cost and stay zero, so the scales must be the same). That last check does not use the
 * plan's grouped views, so it tests them. The WebGPU engine (Dawn; SwiftShader without a GPU) runs the
 * same views and matches the reference too.
 */
import { describe, expect, it } from 'vitest';
import type { BackendName } from '../../src/engine/backend.js';
import { balance, ENorm } from '../../src/engine/enorm.js';
import { WebGPUBackend } from '../../src/engine/webgpu/backend.js';
import type { Conv2DLayer, Layer, Network } from '../../src/network/layers.js';
import { mulberry32, normalArray } from '../../src/network/random.js';
import { prepare } from '../../src/plan/prepare.js';
import { balanceReference } from '../../src/reference/reference.js';
import { cloneNetwork, maxRelDiff, randomInputs, run, withFloat64Tensors } from '../helpers/nets.js';
import { gpuDevice, readBuffer } from '../helpers/webgpu.js';

type Layout = 'hwio' | 'oihw';
const GROUPS = 2;
const [CIN, MID, OUT] = [3, 6, 4];
const CPG = MID / GROUPS;

/** A conv's kernel: [kh, kw, cin, cout] or [cout, cin, kh, kw], each output unit scaled by its own factor so that balancing moves. */
function conv(name: string, layout: Layout, k: number, cin: number, cout: number, groups: number, seed: number): Conv2DLayer {
  const rng = mulberry32(seed);
  const n = k * k * cin * cout;
  const unitOf = (x: number) => (layout === 'hwio' ? x % cout : Math.floor(x / (cin * k * k)));
  const weight = Float32Array.from({ length: n }, (_, x) => (2 * rng() - 1) * 4 ** ((2 * unitOf(x)) / cout - 1));
  const shape: Conv2DLayer['shape'] = layout === 'hwio' ? [k, k, cin, cout] : [cout, cin, k, k];
  return { kind: 'conv2d', name, layout, shape, weight, bias: normalArray(cout, 0.5, rng), padding: 'same', ...(groups > 1 ? { groups } : {}) };
}

function chain(layout: Layout): { net: Network; shape: number[] } {
  const shape = layout === 'hwio' ? [5, 4, CIN] : [CIN, 5, 4];
  return {
    net: [
      { kind: 'input', shape }, conv('c1', layout, 3, CIN, MID, 1, 31), { kind: 'relu' },
      conv('g', layout, 3, CPG, MID, GROUPS, 32), { kind: 'relu' }, conv('c3', layout, 1, MID, OUT, 1, 33),
    ],
    shape,
  };
}

/** The grouped kernel as an ungrouped one over all MID input channels, zero where an output does not read a channel. */
function blockDiagonal(layer: Conv2DLayer): Conv2DLayer {
  const hwio = layer.layout === 'hwio';
  const [kh, kw, cout] = hwio ? [layer.shape[0], layer.shape[1], layer.shape[3]] : [layer.shape[2], layer.shape[3], layer.shape[0]];
  const cpg = hwio ? layer.shape[2] : layer.shape[1];
  const groups = layer.groups ?? 1;
  const cin = cpg * groups;
  const opg = cout / groups;
  const weight = new Float32Array(kh * kw * cin * cout);
  for (let t = 0; t < kh * kw; t++) for (let i = 0; i < cpg; i++) for (let o = 0; o < cout; o++) {
    const c = Math.floor(o / opg) * cpg + i;
    const from = hwio ? (t * cpg + i) * cout + o : (o * cpg + i) * kh * kw + t;
    const to = hwio ? (t * cin + c) * cout + o : (o * cin + c) * kh * kw + t;
    weight[to] = layer.weight[from];
  }
  return { ...layer, groups: undefined, weight, shape: hwio ? [kh, kw, cin, cout] : [cout, cin, kh, kw] };
}

const BACKENDS: BackendName[] = ['simd', 'scalar', 'js'];

describe('balancing through a grouped conv2d (groups 2)', () => {
  it.each(['hwio', 'oihw'] as const)('%s: conv -> relu -> grouped conv -> relu -> conv keeps the function, lowers the energy, matches the reference', async (layout) => {
    const { net, shape } = chain(layout);
    const batch = 3;
    const x = randomInputs(shape, batch, 11);
    const before = run(net, x, batch, shape);
    const options = { tolerance: 1e-10, maxCycles: 200 };
    const reference = balanceReference(cloneNetwork(net), options);
    expect(reference.plan.groups.map((g) => [g.name, g.size])).toEqual([['c1', MID], ['g', MID]]);
    expect(maxRelDiff(run(withFloat64Tensors(net, reference.tensors), x, batch, shape), before)).toBeLessThan(1e-9);
    expect(reference.energies[reference.energies.length - 1]).toBeLessThan(0.9 * reference.energyBefore);

    // The same network with the grouped kernel block-diagonal and ungrouped: the same balanced weights.
    const dense = cloneNetwork(net).map((l) => (l.name === 'g' ? blockDiagonal(l as Conv2DLayer) : l)) as Layer[];
    expect(maxRelDiff(run(dense, x, batch, shape), before)).toBeLessThan(1e-12);
    const denseRef = balanceReference(dense, options);
    const gIndex = reference.plan.tensors.findIndex((t) => t.layer === 'g' && t.role === 'weight');
    reference.tensors.forEach((t, i) => {
      const expected = i === gIndex ? null : denseRef.tensors[i];
      if (expected) expect(maxRelDiff(t, expected), reference.plan.tensors[i].layer).toBeLessThan(1e-9);
    });
    const balancedDense = blockDiagonal({ ...(net[3] as Conv2DLayer), weight: Float32Array.from(reference.tensors[gIndex]) });
    expect(maxRelDiff(balancedDense.weight, denseRef.tensors[gIndex])).toBeLessThan(1e-6);

    for (const backend of BACKENDS) {
      const copy = cloneNetwork(net);
      const report = await balance(copy, { ...options, backend });
      expect(report.energyAfter, backend).toBeLessThan(0.9 * report.energyBefore);
      expect(maxRelDiff(run(copy, x, batch, shape), before), backend).toBeLessThan(1e-5);
      const plan = balanceReference(copy, { maxCycles: 0 }).plan;
      plan.tensors.forEach((t, i) => expect(maxRelDiff(t.data, reference.tensors[i]), `${backend} ${t.layer} ${t.role}`).toBeLessThan(1e-4));
    }
  });
});

describe('a grouped conv2d on the WebGPU engine', () => {
  it.each(['hwio', 'oihw'] as const)('%s: 8 cycles on the device give the reference tensors', async (layout) => {
    const cycles = 8;
    const { net } = chain(layout);
    const reference = balanceReference(cloneNetwork(net), { maxCycles: cycles, tolerance: 0 });
    const device = await gpuDevice();
    const gpu = await WebGPUBackend.create(device);
    const engine = ENorm.onDevice(net, gpu, {});
    const { tensors } = prepare(net, {}).plan;
    tensors.forEach((t, i) => device.queue.writeBuffer(gpu.memory, engine.tensorPointers[i], t.data as Float32Array<ArrayBuffer>));
    engine.discardSums();
    for (let k = 0; k < cycles; k++) engine.cycle();
    engine.materialise();
    const encoder = device.createCommandEncoder();
    gpu.encode(encoder);
    device.queue.submit([encoder.finish()]);
    for (const [i, t] of tensors.entries()) {
      const data = new Float32Array(await readBuffer(device, gpu.memory, engine.tensorPointers[i], 4 * t.data.length));
      expect(maxRelDiff(data, reference.tensors[i]), `${t.layer} ${t.role}`).toBeLessThan(1e-4);
    }
    expect(maxRelDiff(reference.tensors[tensors.findIndex((t) => t.layer === 'g' && t.role === 'weight')], (net[3] as Conv2DLayer).weight)).toBeGreaterThan(1e-2);
    gpu.destroy();
  });
});
