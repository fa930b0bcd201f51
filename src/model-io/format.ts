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
  verification(model: M): { network: Network; inputShape: number[] };
}
