/** Expected CLI failures that are not about the model's contents: limits, the deviation check, usage. */

/** Codes of the CLI's own failures; the library's ENormError codes are used where they fit. */
/** E_CHECK: the output check cannot run (its runtime is not installed) and --require-check asks for it. */
export type CliFailureCode = 'E_USAGE' | 'E_DEVIATION' | 'E_OPTION' | 'E_SHAPE' | 'E_NONFINITE' | 'E_CHECK';

export class CliFailure extends Error {
  constructor(readonly code: CliFailureCode, message: string, readonly details: Record<string, unknown> = {}) {
    super(message);
    this.name = 'CliFailure';
  }
}
