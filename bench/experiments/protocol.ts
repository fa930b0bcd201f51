/**
 * The experiments' settings. 'full' is the protocol scaled to the project's 2-core machines (see
 * docs/RESULTS.md for how it departs from the paper's); 'quick' runs the whole pipeline in a few
 * minutes; 'tiny' is the test suite's.
 */
export type FcMethod = 'baseline' | 'enorm' | 'bn' | 'enorm+bn';
/** The width-500 protocol's methods: also the official release's update order as a training method. */
export type FcWideMethod = FcMethod | 'enorm-jacobi';
export type ConvMethod = 'baseline' | 'bn' | 'gn' | 'enorm';

/** A fully connected depth experiment: 784 -> width -> k x (width -> width) -> 10 for k in depths. */
export interface FcSettings<M extends string> {
  width: number;
  /** In the order they run. */
  depths: number[];
  methods: M[];
  /** Rows of the training pool used to train, and of the validation rows used to pick lr. */
  trainRows: number;
  validationRows: number;
  testRows: number;
  epochs: number;
  batchSize: number;
  weightDecay: number;
  c: number;
  seeds: number[];
  lrGrid: Record<M, number[]>;
}

export interface Protocol {
  name: 'full' | 'quick' | 'tiny';
  /** Fashion-MNIST split: seeded, `test` + `validation` rows held out, the rest is the training pool. */
  split: { seed: number; test: number; validation: number };
  fc: FcSettings<FcMethod>;
  /**
   * The paper's width (issue 14): 784 -> width -> k x (width -> width) -> 10 on all training rows. Each
   * method's lr is picked once, at searchDepth, by runs of searchEpochs epochs on the validation rows
   * (seed 0), and used at every depth.
   */
  fcWide: FcSettings<FcWideMethod> & { searchDepth: number; searchEpochs: number };
  smallBatch: {
    channels: [number, number, number];
    /** The images are average-pooled by this factor first (1: full 28x28). */
    downsample: number;
    batchSizes: number[];
    methods: ConvMethod[];
    trainRows: number;
    validationRows: number;
    testRows: number;
    epochs: number;
    momentum: number;
    /**
     * Decay of BN's moving averages: 0.9, PyTorch's default (the paper's), rather than tfjs's 0.99,
     * whose averages still hold ~40% of their initial values after the ~90 steps of a batch-128 run.
     */
    bnMomentum: number;
    weightDecay: number;
    c: number;
    seeds: number[];
    /** lr at batch 32, times the best of lrFactors on the validation rows at batch 32 (seed 0); other batch sizes scale it linearly. */
    lrAt32: Record<ConvMethod, number>;
    lrFactors: number[];
  };
  overhead: { steps: number; fcBatch: number; convBatch: number };
  convergence: { cycles: number; trainEpochs: number };
}

const FC_METHODS: FcMethod[] = ['baseline', 'enorm', 'bn', 'enorm+bn'];
const CONV_METHODS: ConvMethod[] = ['baseline', 'bn', 'gn', 'enorm'];
const FC_WIDE_METHODS: FcWideMethod[] = [...FC_METHODS, 'enorm-jacobi'];
const gridOf = (lrs: number[]) => Object.fromEntries(FC_WIDE_METHODS.map((m) => [m, lrs])) as Record<FcWideMethod, number[]>;
const SPLIT = { seed: 2019, test: 10_000, validation: 5_000 };

export const PROTOCOLS: Record<Protocol['name'], Protocol> = {
  full: {
    name: 'full',
    split: SPLIT,
    fc: {
      width: 64, depths: [2, 6, 10, 14], methods: FC_METHODS, trainRows: 10_000, validationRows: 5_000, testRows: 10_000,
      epochs: 10, batchSize: 256, weightDecay: 1e-3, c: 1.2, seeds: [1, 2, 3],
      lrGrid: { baseline: [0.01, 0.03, 0.1, 0.3], enorm: [0.01, 0.03, 0.1, 0.3], bn: [0.03, 0.1, 0.3, 1], 'enorm+bn': [0.03, 0.1, 0.3, 1] },
    },
    // The paper trains 60 epochs; 15 here (2-core machines), on all 55,000 training images.
    fcWide: {
      width: 500, depths: [2, 14, 6, 10], methods: FC_WIDE_METHODS, trainRows: 55_000, validationRows: 5_000, testRows: 10_000,
      epochs: 15, batchSize: 256, weightDecay: 1e-3, c: 1.2, seeds: [1, 2, 3], searchDepth: 14, searchEpochs: 3,
      lrGrid: gridOf([0.01, 0.03, 0.1, 0.3]),
    },
    smallBatch: {
      channels: [8, 16, 16], downsample: 2, batchSizes: [2, 8, 32, 128], methods: CONV_METHODS, trainRows: 4_000, validationRows: 2_000, testRows: 10_000,
      epochs: 3, momentum: 0.9, bnMomentum: 0.9, weightDecay: 1e-3, c: 1.1, seeds: [1, 2, 3],
      lrAt32: { baseline: 0.1, bn: 0.2, gn: 0.2, enorm: 0.1 }, lrFactors: [0.5, 1, 2, 4],
    },
    overhead: { steps: 10, fcBatch: 256, convBatch: 32 },
    convergence: { cycles: 300, trainEpochs: 5 },
  },
  quick: {
    name: 'quick',
    split: SPLIT,
    fc: {
      width: 48, depths: [1, 4, 8, 11], methods: FC_METHODS, trainRows: 2_048, validationRows: 1_000, testRows: 2_000,
      epochs: 2, batchSize: 256, weightDecay: 1e-3, c: 1.2, seeds: [1, 2, 3],
      lrGrid: { baseline: [0.03, 0.1], enorm: [0.03, 0.1], bn: [0.1, 0.3], 'enorm+bn': [0.1, 0.3] },
    },
    fcWide: {
      width: 64, depths: [1, 4], methods: FC_WIDE_METHODS, trainRows: 2_048, validationRows: 1_000, testRows: 2_000,
      epochs: 1, batchSize: 256, weightDecay: 1e-3, c: 1.2, seeds: [1, 2], searchDepth: 4, searchEpochs: 1,
      lrGrid: gridOf([0.03, 0.1]),
    },
    smallBatch: {
      channels: [4, 8, 8], downsample: 2, batchSizes: [2, 8, 32, 128], methods: CONV_METHODS, trainRows: 256, validationRows: 256, testRows: 1_000,
      epochs: 1, momentum: 0.9, bnMomentum: 0.9, weightDecay: 1e-3, c: 1.1, seeds: [1, 2, 3],
      lrAt32: { baseline: 0.1, bn: 0.2, gn: 0.2, enorm: 0.1 }, lrFactors: [1],
    },
    overhead: { steps: 3, fcBatch: 256, convBatch: 32 },
    convergence: { cycles: 20, trainEpochs: 1 },
  },
  tiny: {
    name: 'tiny',
    split: SPLIT,
    fc: {
      width: 16, depths: [1, 3], methods: FC_METHODS, trainRows: 256, validationRows: 128, testRows: 256,
      epochs: 1, batchSize: 64, weightDecay: 1e-3, c: 1.2, seeds: [1, 2],
      lrGrid: { baseline: [0.05, 0.1], enorm: [0.05, 0.1], bn: [0.1], 'enorm+bn': [0.1] },
    },
    fcWide: {
      width: 16, depths: [1, 3], methods: FC_WIDE_METHODS, trainRows: 256, validationRows: 128, testRows: 256,
      epochs: 1, batchSize: 64, weightDecay: 1e-3, c: 1.2, seeds: [1], searchDepth: 3, searchEpochs: 1,
      lrGrid: gridOf([0.05, 0.1]),
    },
    smallBatch: {
      channels: [4, 4, 8], downsample: 2, batchSizes: [8, 32], methods: CONV_METHODS, trainRows: 128, validationRows: 64, testRows: 128,
      epochs: 1, momentum: 0.9, bnMomentum: 0.9, weightDecay: 1e-3, c: 1.1, seeds: [1, 2],
      lrAt32: { baseline: 0.02, bn: 0.05, gn: 0.05, enorm: 0.02 }, lrFactors: [1, 2],
    },
    overhead: { steps: 2, fcBatch: 64, convBatch: 16 },
    convergence: { cycles: 8, trainEpochs: 1 },
  },
};
