/**
 * What the CLI needs of a model format: recognise a path, read it into an enorm network, write the
 * balanced network back, and the verification hook (the network and input shape the output-deviation
 * check runs). A new format implements this in its own folder and adds one line to formats.ts.
 */
import type { Network } from '../network/layers.js';

export interface ModelFormat<M = unknown> {
  /** Short name, e.g. 'tfjs'. */
  readonly name: string;
  /** What the CLI's help calls the input, e.g. 'model.json'. */
  readonly argument: string;
  /** Whether `path` (and, when given, the file's first bytes) is this format's. */
  detect(path: string, head?: Uint8Array): boolean;
  /** Reads an untrusted model file: ENormError E_MODEL / E_LAYER_KIND / E_MEMORY for what it refuses. */
  read(path: string): Promise<M>;
  /** Writes the (balanced) model into `dir` crash-safely (writeAtomically); resolves to the written paths. */
  write(model: M, dir: string): Promise<string[]>;
  /**
   * The deviation check's view of a model: the network balanced in place (its arrays are those
   * write() saves) and the per-example input shape, -1 where the file leaves a dimension open.
   */
  verification(model: M): { network: Network; inputShape: number[]; forwardDiffers?: string };
  /**
   * Where the format writes: 'dir' (`-o` names a folder, as tfjs's model.json + shards) or 'file'
   * (`-o` names the output file, as ONNX's model.onnx; external data is written beside it).
   */
  readonly output: 'dir' | 'file';
  /**
   * The model with every batch norm that follows a dense / convolution layer folded into it, as an
   * inference model whose topology really changes (the BN layer or node is gone). Absent: the
   * format cannot fold, and the CLI refuses --fold-bn for it with E_OPTION.
   */
  foldBatchNorm?(model: M): M;
  /**
   * The model as a real runtime runs it (ONNX: onnxruntime-web), for the CLI's output check; built
   * from the model's current arrays, so calling it before and after balancing compares the two.
   * Resolves to { unavailable: reason } when the runtime is not installed. Absent: the CLI checks
   * the network with enorm's own float64 forward pass.
   */
  runtime?(model: M): Promise<ModelRunner | { unavailable: string }>;
  /**
   * Per rescaled weight tensor, the name it has in the model file and the array, for reports
   * (--quantize). Absent: the CLI names tensors '<layer>/<tensor>'.
   */
  weightNames?(model: M): { name: string; data: Float32Array; layer: string; tensor: string }[];
}

/** Runs a batch of inputs (batch × the per-example shape, float32) and resolves to the first output, flattened. */
export type ModelRunner = (input: Float32Array, batch: number, shape: readonly number[]) => Promise<Float32Array>;
