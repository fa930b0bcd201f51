import { align16, formatBytes, memoryError } from './memory.js';
import type { Plan, TensorSlot } from '../plan/ir.js';

/**
 * Where one engine keeps everything, as byte offsets from the start of its region: the f64 sums
 * of every group, the f32 scale vectors d and 1/d, then every plan tensor, then every companion.
 * Each block starts 16-byte aligned. Offsets are plain numbers (exact below 2^53); the region is
 * at most 4 GiB on a host backend, so every pointer the engine passes to a kernel is a u32.
 */
export interface Layout {
  bytes: number;
  sumsBytes: number;
  /** A = sum |incoming|^p and B = sum |outgoing|^p of group g (f64 per unit), inside the sums block at 0. */
  groupSums: { incoming: number; outgoing: number }[];
  d: number;
  dInv: number;
  tensors: number[];
  companions: number[][];
  /** Element count of plan tensor i (and of each of its companions) when the layout was made. */
  lengths: number[];
}

export function layoutEngine(plan: Plan): Layout {
  // A loop, not Math.max(...sizes): spreading 130,000+ groups into arguments overflows the stack.
  let maxUnits = 1;
  for (const g of plan.groups) if (g.size > maxUnits) maxUnits = g.size;
  let at = 0;
  const take = (bytes: number) => {
    const p = at;
    at += align16(bytes);
    return p;
  };
  const groupSums = plan.groups.map((g) => ({ incoming: take(8 * g.size), outgoing: take(8 * g.size) }));
  const sumsBytes = at;
  const d = take(4 * maxUnits);
  const dInv = take(4 * maxUnits);
  const lengths = plan.tensors.map((t) => t.data.length);
  const tensors = lengths.map((n) => take(4 * n));
  const companions = plan.tensors.map((t, i) => t.companions.map(() => take(4 * lengths[i])));
  return { bytes: at, sumsBytes, groupSums, d, dInv, tensors, companions, lengths };
}

/** Display name of plan tensor t (j = 0) or of its companion j - 1. */
export const tensorName = (t: TensorSlot, j: number): string => (j === 0 ? t.role : `companion ${j - 1} of ${t.role}`);

/**
 * E_MEMORY unless the layout fits in `room` bytes (what the backend can still reserve), naming the
 * first tensor or companion that would end past it. Reads only the layout: nothing is allocated.
 */
export function checkFits(plan: Plan, layout: Layout, room: number, backend: string): void {
  if (layout.bytes <= room) return;
  // Sums and scale vectors come first: everything before the first tensor is scratch.
  const scratch = layout.tensors.length ? layout.tensors[0] : layout.bytes;
  const need = `the network needs ${formatBytes(layout.bytes)} of engine memory (${formatBytes(scratch)} of it scratch) and the '${backend}' backend can reserve ${formatBytes(room)} (at most 4 GiB per engine, as WebAssembly memory)`;
  for (let i = 0; i < plan.tensors.length; i++) {
    const t = plan.tensors[i];
    const bytes = 4 * layout.lengths[i];
    const starts = [layout.tensors[i], ...layout.companions[i]];
    for (let j = 0; j < starts.length; j++) {
      if (starts[j] + bytes > room) {
        const tensor = tensorName(t, j);
        throw memoryError(`layer '${t.layer}' ${tensor} (${formatBytes(bytes)}) does not fit: ${need}`, { layerIndex: t.layerIndex, layer: t.layer, tensor });
      }
    }
  }
  throw memoryError(`the scratch of ${plan.groups.length} groups does not fit: ${need}`);
}
