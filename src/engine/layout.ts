import { align16, formatBytes, memoryError } from './memory.js';
import type { Plan, TensorSlot } from '../plan/ir.js';

/**
 * Where one engine keeps everything, as byte offsets from the start of its region: the f64 sums
 * of every group, the f64 energies, the pending scales (f64 logs and f32 copies), the f32 step scales d and 1/d, then
 * every plan tensor, then every companion. Each block starts 16-byte aligned. Offsets are plain
 * numbers (exact below 2^53); the region is at most 4 GiB on a host backend, so every pointer the
 * engine passes to a kernel is a u32.
 */
export interface Layout {
  bytes: number;
  /**
   * Group g's f64 blocks: `sums` = [Af | Bf | Ao | Bo] (size units each; the solve kernel's layout)
   * and `base` = [Ab | Bb], the constant sums of its single-view tensors (docs/ALGORITHM.md 3b).
   */
  groupSums: { sums: number; base: number }[];
  /** One f64 per group: the energy its last step computed. */
  energies: number;
  /**
   * Pending scales of every unit, group g's units from unitOffset[g]: u = log sigma (f64, the exact
   * value `solve` updates), and its f32 copies sigma and 1/sigma (what the other kernels read).
   */
  logSigma: number;
  sigma: number;
  sigmaInv: number;
  unitOffset: number[];
  /** One f32 1.0 (the second factor of a single-view tensor's materialising pass). */
  ones: number;
  d: number;
  dInv: number;
  tensors: number[];
  companions: number[][];
  /** Element count of plan tensor i (and of each of its companions) when the layout was made. */
  lengths: number[];
}

export function layoutEngine(plan: Plan): Layout {
  // Loops, not Math.max(...sizes): spreading 130,000+ groups into arguments overflows the stack.
  let maxUnits = 1;
  let units = 0;
  const unitOffset = plan.groups.map((g) => {
    if (g.size > maxUnits) maxUnits = g.size;
    units += g.size;
    return units - g.size;
  });
  let at = 0;
  const take = (bytes: number) => {
    const p = at;
    at += align16(bytes);
    return p;
  };
  const groupSums = plan.groups.map((g) => ({ sums: take(32 * g.size), base: take(16 * g.size) }));
  const energies = take(8 * plan.groups.length);
  const logSigma = take(8 * units);
  const sigma = take(4 * units);
  const sigmaInv = take(4 * units);
  const ones = take(4);
  const d = take(4 * maxUnits);
  const dInv = take(4 * maxUnits);
  const lengths = plan.tensors.map((t) => t.data.length);
  const tensors = lengths.map((n) => take(4 * n));
  const companions = plan.tensors.map((t, i) => t.companions.map(() => take(4 * lengths[i])));
  return { bytes: at, groupSums, energies, logSigma, sigma, sigmaInv, unitOffset, ones, d, dInv, tensors, companions, lengths };
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
