import { ENormError } from '../errors.js';
import { tensorName } from './layout.js';
import type { Plan, TensorSlot } from '../plan/ir.js';

/** E_OVERFLOW for element `index` of a plan tensor (j = 0) or of its companion j - 1. */
export function overflowError(t: TensorSlot, j: number, index: number, value?: number): ENormError {
  const tensor = tensorName(t, j);
  const became = value === undefined ? 'became non-finite' : `became ${value}`;
  return new ENormError('E_OVERFLOW', `layer '${t.layer}' ${tensor}[${index}] ${became} while rescaling; no array was changed`, { layerIndex: t.layerIndex, layer: t.layer, tensor, index });
}

/** E_NONFINITE for a value that was not finite before the cycle. */
export function nonFiniteError(t: TensorSlot, j: number, index: number, value?: number): ENormError {
  const tensor = tensorName(t, j);
  const is = value === undefined ? 'is not finite' : `is ${value}`;
  return new ENormError('E_NONFINITE', `layer '${t.layer}' ${tensor}[${index}] ${is} before rescaling (did the training step diverge?); no array was changed`, { layerIndex: t.layerIndex, layer: t.layer, tensor, index });
}

/**
 * Whether an ArrayBuffer was detached (transferred). Runtimes without `detached` (Node 20): a
 * detached buffer has byteLength 0, and so does no buffer that held a plan tensor, except a
 * resizable or growable one shrunk to 0, which is a resize.
 */
function isDetached(b: ArrayBufferLike): boolean {
  const flags = b as { detached?: boolean; resizable?: boolean; growable?: boolean };
  if (typeof flags.detached === 'boolean') return flags.detached;
  return b.byteLength === 0 && flags.resizable !== true && flags.growable !== true;
}

function arrayChanged(t: TensorSlot, j: number, data: Float32Array, planned: number, action: string): ENormError {
  const tensor = tensorName(t, j);
  const details = { layerIndex: t.layerIndex, layer: t.layer, tensor };
  if (isDetached(data.buffer)) {
    return new ENormError('E_STATE', `layer '${t.layer}' ${tensor}: its ArrayBuffer was detached (transferred) after the engine was created; ${action} stopped and no array was changed`, details);
  }
  return new ENormError('E_SHAPE', `layer '${t.layer}' ${tensor} now has ${data.length} elements, the engine was laid out for ${planned} (was its resizable ArrayBuffer resized?); ${action} stopped and no array was changed`, details);
}

/**
 * Throws E_STATE (detached buffer) or E_SHAPE (other length) unless every plan tensor and
 * companion still has the length the engine memory was laid out for: a user `await` (or an
 * onCycle callback) may have transferred or resized a buffer since. Reads lengths only.
 */
export function checkArrays(plan: Plan, lengths: readonly number[], action: string): void {
  const { tensors } = plan;
  for (let i = 0; i < tensors.length; i++) {
    const t = tensors[i];
    const n = lengths[i];
    if (t.data.length !== n) throw arrayChanged(t, 0, t.data, n, action);
    for (let j = 0; j < t.companions.length; j++) {
      if (t.companions[j].length !== n) throw arrayChanged(t, j + 1, t.companions[j], n, action);
    }
  }
}
