import { ENormError } from '../errors.js';
import type { Network } from '../network/layers.js';
import { CrossMode, MAX_HOST_BYTES, type Backend, type CycleKernels, type DeviceBackend, type Kernels } from './backend.js';
import { planFusion, type CrossIndex, type ViewRef } from './fusion.js';
import { checkFits, layoutEngine, type Layout } from './layout.js';
import { disposedError, disposedKernels, disposeSymbol } from './memory.js';
import type { Plan, View } from '../plan/ir.js';
import type { ENormOptions, ResolvedOptions } from '../plan/options.js';
import { prepare, type Prepared } from '../plan/prepare.js';
import { createBackend } from './select.js';
import { checkArrays, nonFiniteError, overflowError } from './tensor-errors.js';

export { nonFiniteError, overflowError };
export { balance, type BalanceReport } from './balance.js';

/** Cumulative scale d of every unit of one group since the engine was created. */
export interface GroupScales {
  group: string;
  layers: string[];
  scales: Float64Array;
}

/** A view resolved to byte pointers: one kernel call's arguments. */
interface BoundView {
  w: number;
  outer: number;
  outerStride: number;
  count: number;
  inner: number;
  /** Byte offsets of this view's units inside its group's f64 sums and the f32 scale vectors. */
  acc: number;
  sc: number;
  companions: number[];
  /** Rescaling this view also sums the partner view's |w|^p into the partner group's sums. */
  fuse: { partner: BoundView; sums: number; cross: CrossIndex } | null;
  /** This view's sums were already added by its partner's pass since they were last used. */
  ready: boolean;
}
interface BoundGroup {
  size: number;
  /** A = sum |incoming|^p and B = sum |outgoing|^p per unit (f64); zero between uses. */
  incoming: number;
  outgoing: number;
  costWriters: BoundView[];
  writers: BoundView[];
  readers: BoundView[];
  total: Float64Array;
}

/** Every public method; after dispose() each is an own property that throws E_STATE (cycle() itself stays check-free). */
const ENGINE_METHODS = ['upload', 'arrayPointers', 'discardSums', 'download', 'cycle', 'energy', 'step', 'scales', 'resetScales'] as const;


/**
 * A network bound to a kernel backend, with its plan and scratch memory laid out once, for
 * running ENorm cycles repeatedly (for example after every SGD step).
 *
 * The engine works on its own copy of the tensors: `upload()` copies the network's arrays in,
 * `cycle()` balances the copy, `download()` writes it back. `step()` does all three.
 * On a DeviceBackend (`ENorm.onDevice`) only `cycle()` runs here; the caller moves tensors
 * between its device buffers and `tensorPointers` / `companionPointers`.
 */
export class ENorm {
  readonly plan: Plan;
  readonly backend: Backend | DeviceBackend;
  readonly options: Readonly<ResolvedOptions>;
  /** Byte offset of every plan tensor in backend memory, and of each of its companions. */
  readonly tensorPointers: readonly number[];
  readonly companionPointers: readonly (readonly number[])[];
  private k: CycleKernels;
  private readonly groups: BoundGroup[];
  private readonly sums: number;
  private readonly sumsBytes: number;
  private readonly d: number;
  private readonly dInv: number;
  /** Element count of every plan tensor when memory was laid out: upload / download refuse other lengths. */
  private readonly lengths: readonly number[];
  /** The host backend's memory as f32; null on a device backend or once disposed. */
  private f32: Float32Array | null;
  private disposed = false;

  /**
   * Validates the network and options (throws ENormError, touching nothing), lays out engine
   * memory and uploads the network's current arrays. Dispose the engine when done with it
   * (`engine.dispose()`, or `using engine = await ENorm.create(...)`): its memory goes back to a pool.
   */
  static async create(net: Network, options: ENormOptions = {}): Promise<ENorm> {
    return ENorm.fromPrepared(prepare(net, options));
  }

  /** As `create`, from what prepare() returned (balance() resolves its options once, there). @internal */
  static async fromPrepared({ plan, options: resolved }: Prepared): Promise<ENorm> {
    const layout = layoutEngine(plan);
    // Before allocating anything: no host backend addresses more than 4 GiB.
    checkFits(plan, layout, MAX_HOST_BYTES, resolved.backend);
    const backend = await createBackend(resolved.backend);
    try {
      // Exact, now that the backend's static data is placed; then every array is re-checked by
      // upload(), since the caller's code ran during the await (a buffer may be detached or resized).
      checkFits(plan, layout, backend.available(), backend.name);
      const engine = new ENorm(plan, backend, resolved, layout);
      engine.upload();
      return engine;
    } catch (e) {
      backend.dispose();
      throw e;
    }
  }

  /**
   * An engine whose memory is on a device: validates and plans as `create`, reserves the device
   * memory, and leaves every tensor, sum and scale at zero until the caller writes them.
   */
  static onDevice(net: Network, backend: DeviceBackend, options: Omit<ENormOptions, 'backend'> = {}): ENorm {
    const { plan, options: resolved } = prepare(net, options);
    return new ENorm(plan, backend, resolved, layoutEngine(plan));
  }

  private constructor(plan: Plan, backend: Backend | DeviceBackend, options: ResolvedOptions, layout: Layout) {
    this.plan = plan;
    this.backend = backend;
    this.options = options;
    this.k = backend.kernels;
    this.lengths = layout.lengths;

    // Byte pointers: base + offset, plain numbers (< 2^32 on a host backend, checked by checkFits / reserve).
    const at = backend.reserve(layout.bytes);
    this.sums = at;
    this.sumsBytes = layout.sumsBytes;
    this.d = at + layout.d;
    this.dInv = at + layout.dInv;
    this.tensorPointers = layout.tensors.map((offset) => at + offset);
    this.companionPointers = layout.companions.map((list) => list.map((offset) => at + offset));
    this.f32 = 'buffer' in backend ? new Float32Array(backend.buffer) : null;

    const bind = (v: View): BoundView => ({
      w: this.tensorPointers[v.tensor] + 4 * v.start,
      outer: v.outer,
      outerStride: v.outerStride,
      count: v.count,
      inner: v.inner,
      acc: 8 * v.unitStart,
      sc: 4 * v.unitStart,
      companions: this.companionPointers[v.tensor].map((p) => p + 4 * v.start),
      fuse: null,
      ready: false,
    });
    this.groups = plan.groups.map((g, gi) => {
      const incoming = at + layout.groupSums[gi].incoming;
      const outgoing = at + layout.groupSums[gi].outgoing;
      const writers = g.writers.map(bind);
      return {
        size: g.size,
        incoming,
        outgoing,
        costWriters: writers.filter((_, i) => g.writers[i].inCost),
        writers,
        readers: g.readers.map(bind),
        total: new Float64Array(g.size).fill(1),
      };
    });
    // A tensor between exactly two groups is read and written once per rescaling instead of twice;
    // a cost view alone on its tensor sums its own units for its group's next step while rescaling.
    const side = ({ group, role, index }: ViewRef) => {
      const g = this.groups[group];
      return role === 'writer' ? { view: g.writers[index], sums: g.incoming } : { view: g.readers[index], sums: g.outgoing };
    };
    const fusion = planFusion(plan);
    for (const { sides, cross } of fusion.pairs) {
      const [p, q] = sides.map(side);
      p.view.fuse = { partner: q.view, sums: q.sums + q.view.acc, cross: cross[0] };
      q.view.fuse = { partner: p.view, sums: p.sums + p.view.acc, cross: cross[1] };
    }
    for (const ref of fusion.singles) {
      const { view, sums } = side(ref);
      view.fuse = { partner: view, sums: sums + view.acc, cross: { mode: CrossMode.unit, a: 1, b: view.count } };
    }
  }

  /**
   * Copies the network's tensors (and companions) into engine memory. If any value is not finite
   * (an SGD step diverged, say), throws E_NONFINITE naming the tensor; the arrays are not touched.
   */
  upload(): void {
    const { k, f32 } = this.host('upload');
    checkArrays(this.plan, this.lengths, 'upload()');
    this.discardSums();
    this.plan.tensors.forEach((t, i) => {
      this.arrayPointers(i).forEach((ptr, j) => {
        const data = j === 0 ? t.data : t.companions[j - 1];
        f32.set(data, ptr >>> 2);
        const bad = k.firstNonFinite(ptr, data.length);
        if (bad >= 0) throw nonFiniteError(t, j, bad, data[bad]);
      });
    });
  }

  /** Byte pointers of plan tensor i (j = 0) and of its companions (j = 1, 2, ...), in engine memory. */
  arrayPointers(i: number): number[] {
    return [this.tensorPointers[i], ...this.companionPointers[i]];
  }

  /** Voids the sums gathered from earlier weights; call after new values are written to engine memory. */
  discardSums(): void {
    this.k.zero(this.sums, this.sumsBytes);
    for (const g of this.groups) for (const v of [...g.writers, ...g.readers]) v.ready = false;
  }

  /**
   * Writes engine memory back into the network's arrays. If any value is not finite, throws
   * E_OVERFLOW naming the tensor and writes nothing.
   */
  download(): void {
    const { k, f32 } = this.host('download');
    checkArrays(this.plan, this.lengths, 'download()');
    this.plan.tensors.forEach((t, i) => {
      const n = this.lengths[i];
      this.arrayPointers(i).forEach((ptr, j) => {
        const bad = k.firstNonFinite(ptr, n);
        if (bad >= 0) throw overflowError(t, j, bad, f32[(ptr >>> 2) + bad]);
      });
    });
    this.plan.tensors.forEach((t, i) => {
      const n = this.lengths[i];
      this.arrayPointers(i).forEach((ptr, j) => {
        const data = j === 0 ? t.data : t.companions[j - 1];
        data.set(f32.subarray(ptr >>> 2, (ptr >>> 2) + n));
      });
    });
  }

  /**
   * One ENorm cycle (docs/ALGORITHM.md section 3), Gauss-Seidel over the groups in order. For each group:
   *   A_i = sum |incoming_i|^p,  B_i = sum |outgoing_i|^p      (read from the current weights)
   *   d_i = (B_i / A_i)^(1/(2p)) / sqrt(c)                       (1 for dead units)
   *   incoming_i *= d_i,  outgoing_i /= d_i                       (companions move inversely)
   */
  cycle(): void {
    const { k, d, dInv } = this;
    const { p, c } = this.options;
    for (const g of this.groups) {
      for (const v of g.costWriters) this.sum(v, g.incoming, p);
      for (const v of g.readers) this.sum(v, g.outgoing, p);
      k.solveScales(g.incoming, g.outgoing, g.size, p, c, d, dInv);
      k.zero(g.incoming, 8 * g.size);
      k.zero(g.outgoing, 8 * g.size);
      for (const v of g.writers) this.rescale(v, d, dInv);
      for (const v of g.readers) this.rescale(v, dInv, d);
      this.recordScales(g);
    }
  }

  /** total_i *= d_i, where the host can read d (a device engine keeps no totals). */
  private recordScales(g: BoundGroup): void {
    if (!this.f32) return;
    this.refreshViews();
    const d0 = this.d >>> 2;
    for (let i = 0; i < g.size; i++) g.total[i] *= this.f32[d0 + i];
  }

  /** Adds the view's |w|^p to its group's sums, unless its partner's pass already did. */
  private sum(v: BoundView, sums: number, p: number): void {
    if (v.ready) v.ready = false;
    else this.k.accumulate(v.w, v.outer, v.outerStride, v.count, v.inner, sums + v.acc, p);
  }

  /** The view times s (summing its partner's |w|^p on the way when fused); its companions times the inverse. */
  private rescale(v: BoundView, s: number, inverse: number): void {
    if (v.fuse) {
      const { cross } = v.fuse;
      this.k.scaleAccumulate(v.w, v.outer, v.outerStride, v.count, v.inner, s + v.sc, v.fuse.sums, this.options.p, cross.mode, cross.a, cross.b);
      v.fuse.partner.ready = true;
    } else {
      this.k.scale(v.w, v.outer, v.outerStride, v.count, v.inner, s + v.sc);
    }
    for (const m of v.companions) this.k.scale(m, v.outer, v.outerStride, v.count, v.inner, inverse + v.sc);
  }

  /** E = sum over cost tensors of sum |w|^p, on the engine's copy. */
  energy(): number {
    const { k } = this.host('energy');
    let e = 0;
    this.plan.tensors.forEach((t, i) => { if (t.cost) e += k.energy(this.tensorPointers[i], t.data.length, this.options.p); });
    return e;
  }

  /** upload(), cycle(), download(): one ENorm cycle on the network's arrays, e.g. after an SGD step. */
  step(): void {
    this.upload();
    this.cycle();
    this.download();
  }

  /** Cumulative scale of every unit since creation (or the last resetScales). */
  scales(): GroupScales[] {
    this.host('scales');
    return this.plan.groups.map((g, i) => ({ group: g.name, layers: [...g.layers], scales: Float64Array.from(this.groups[i].total) }));
  }

  resetScales(): void {
    for (const g of this.groups) g.total.fill(1);
  }

  /** Number of units the engine balances. */
  get units(): number {
    return this.plan.groups.reduce((a, g) => a + g.size, 0);
  }

  /**
   * Frees the engine: its Wasm instance goes back to a small pool that the next engine reuses
   * (zeroed), and from now on every method throws E_STATE. The arrays keep their values. A device
   * engine's backend stays the caller's (WebGPUBackend.destroy). Calling dispose() again does nothing.
   */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const name of ENGINE_METHODS) {
      Object.defineProperty(this, name, { configurable: true, value: () => { throw disposedError(`${name}()`); } });
    }
    Object.defineProperty(this, 'units', { configurable: true, get: () => { throw disposedError('units'); } });
    // A bound or saved cycle reaches the kernels through this.k: those throw too, before any write.
    this.k = disposedKernels('the engine');
    this.f32 = null;
    if (this.backend.name !== 'webgpu') (this.backend as Backend).dispose();
  }

  /** `using engine = await ENorm.create(net)` disposes the engine at the end of the block. */
  [disposeSymbol](): void {
    this.dispose();
  }

  /** Whether dispose() was called. */
  get isDisposed(): boolean {
    return this.disposed;
  }

  private refreshViews(): void {
    const b = this.backend as Backend;
    if (this.f32 && this.f32.buffer !== b.buffer) this.f32 = new Float32Array(b.buffer);
  }

  /** The host backend's kernels and memory; a device engine cannot read or write from here. */
  private host(what: string): { k: Kernels; f32: Float32Array } {
    if (this.disposed) throw disposedError(`${what}()`);
    if (!this.f32) throw new ENormError('E_STATE', `${what}() needs a host backend; on '${this.backend.name}' the engine memory stays on the device`);
    this.refreshViews();
    return { k: (this.backend as Backend).kernels, f32: this.f32 };
  }
}
