import fc from 'fast-check';
import type { ArchitectureSpec, ConvOp, DenseOp } from './architectures.js';

/** Every conv-side op buildArchitecture knows, and every dense-side one. */
export const ALL_CONV_OPS: ConvOp[] = ['conv', 'conv-s2', 'depthwise', 'bn', 'relu', 'leaky', 'identity', 'max-pool', 'avg-pool', 'dropout', 'residual', 'residual-proj', 'concat', 'tanh'];
export const ALL_DENSE_OPS: DenseOp[] = ['dense-relu', 'dense-leaky', 'dense-identity', 'dense-tanh', 'dense-residual', 'dense-concat', 'dense-bias-free'];

export interface SpecChoices {
  convOps?: ConvOp[];
  denseOps?: DenseOp[];
  maxConv?: number;
  maxDense?: number;
  necks?: ArchitectureSpec['neck'][];
}

/** Random architecture specs for buildArchitecture (random seed, layout, ops, neck, momentum). */
export function architectureArb(choices: SpecChoices = {}): fc.Arbitrary<ArchitectureSpec> {
  const { convOps = ALL_CONV_OPS, denseOps = ALL_DENSE_OPS, maxConv = 6, maxDense = 4 } = choices;
  const necks = choices.necks ?? ['flatten', 'global-avg-pool', 'global-max-pool'];
  return fc.record({
    seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
    torch: fc.boolean(),
    conv: fc.oneof(fc.constant([] as ConvOp[]), fc.array(fc.constantFrom(...convOps), { minLength: 1, maxLength: maxConv })),
    neck: fc.constantFrom(...necks),
    dense: fc.array(fc.constantFrom(...denseOps), { maxLength: maxDense }),
    momentum: fc.boolean(),
  });
}
