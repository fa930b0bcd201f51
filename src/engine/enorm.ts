import { ENormError } from '../errors.js';
import type { Network } from '../network/layers.js';
import { MAX_HOST_BYTES, type Backend, type CycleKernels, type DeviceBackend, type Kernels } from './backend.js';
import { checkFits, layoutEngine, type Layout } from './layout.js';
import { disposedError, disposedKernels, disposeSymbol } from './memory.js';
import type { Plan, TensorSlot } from '../plan/ir.js';
import type { ENormOptions, ResolvedOptions } from '../plan/options.js';
import { prepare, type Prepared } from '../plan/prepare.js';
import { compileSchedules, type Schedules, type Step } from './schedule.js';
import { createBackend } from './select.js';
import { checkArrays, nonFiniteError, overflowError } from './tensor-errors.js';

export { nonFiniteError, overflowError };
export { balance, balancePrepared, type BalanceReport } from './balance.js';

/** Cumulative scale d of every unit of one group since the engine was created. */
export interface GroupScales {
  group: string;
  layers: string[];
  scales: Float64Array;
}

/** Every public method; after dispose() each is an own property that throws E_STATE (cycle() itself stays check-free). */
const ENGINE_METHODS = [
  'upload', 'arrayPointers', 'tensor', 'companion', 'discardSums', 'download', 'cycle', 'materialise', 'energy', 'step', 'scales', 'maxScaleChange',
] as const;

/**
 * A network bound to a kernel backend, with its plan and scratch memory laid out once, for
 * running ENorm cycles repeatedly (for example after every SGD step).
 *
 * The engine works on its own copy of the tensors: `upload()` copies the network's arrays in,
 * `cycle()` balances the copy, `download()` writes it back. `step()` does all three. A cycle keeps
 * its scales pending and writes no weight (docs/ALGORITHM.md section 3b); `materialise()` applies
 * them in one pass, and download(), energy() (where it cannot be had from the sums) and step() call it.
 * On a DeviceBackend (`ENorm.onDevice`) only `cycle()` runs here, and the plan keeps no host
 * array; enorm/webgpu's `DeviceStep` moves the tensors in and out and checks them.
 *
 * Resident tensors (host engines): an embedder may keep its weights and companions in engine
 * memory instead, writing them through `tensor(i)` / `companion(i, j)`, then calling
 * `discardSums()`, `cycle()` and `materialise()`: no upload() or download() per step.
 */
export class ENorm {
  /**
   * The plan. On a device engine its tensors carry no host arrays: `data` and every companion
   * are empty Float32Arrays (the values live in device memory; `lengths[i]` is the element count).
   */
  readonly plan: Plan;
  readonly backend: Backend | DeviceBackend;
  readonly options: Readonly<ResolvedOptions>;
  /** Byte offset of every plan tensor in backend memory, and of each of its companions. */
  readonly tensorPointers: readonly number[];
  readonly companionPointers: readonly (readonly number[])[];
  /** Element count of every plan tensor (and of each companion) when memory was laid out: upload / download refuse other lengths. */
  readonly lengths: readonly number[];
  private k: CycleKernels;
  /** The cycle compiled once (schedule.ts). */
  private readonly schedules: Schedules;
  /** The weights were replaced: the next cycle() runs schedules.fresh first (every sigma := 1). */
  private fresh = true;
  /** A cycle ran since the weights were last materialised: their values are W times the pending sigma. */
  private pending = false;
  /** The over-relaxation factor of the cycle() being replayed. */
  private omega = 1;
  /** Cumulative scale of every unit of group g up to the last materialise() (host engines). */
  private readonly totals: Float64Array[];
  /** Group g's log sigma before its last step: a cycle's scale changes, exact in f64 (host engines). */
  private readonly lastLog: Float64Array[];
  private readonly layout: Layout;
  private readonly at: number;
  /** max |log d| over the units the last cycle() moved (host engines). */
  private lastChange = 0;
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
   * memory, and leaves every tensor, sum and scale at zero until the caller writes them. It keeps
   * no reference to the network's arrays (see `plan`).
   */
  static onDevice(net: Network, backend: DeviceBackend, options: Omit<ENormOptions, 'backend'> = {}): ENorm {
    return ENorm.onDevicePrepared(prepare(net, options), backend);
  }

  /** As `onDevice`, from what prepare() returned (DeviceStep reads the arrays' owners first). @internal */
  static onDevicePrepared({ plan, options: resolved }: Prepared, backend: DeviceBackend): ENorm {
    return new ENorm(plan, backend, resolved, layoutEngine(plan));
  }

  private constructor(plan: Plan, backend: Backend | DeviceBackend, options: ResolvedOptions, layout: Layout) {
    const host = 'buffer' in backend;
    this.plan = host ? plan : withoutArrays(plan);
    this.backend = backend;
    this.options = options;
    this.k = backend.kernels;
    this.lengths = layout.lengths;

    // Byte pointers: base + offset, plain numbers (< 2^32 on a host backend, checked by checkFits / reserve).
    const at = backend.reserve(layout.bytes);
    this.tensorPointers = layout.tensors.map((offset) => at + offset);
    this.companionPointers = layout.companions.map((list) => list.map((offset) => at + offset));
    this.f32 = host ? new Float32Array(backend.buffer) : null;
    this.totals = plan.groups.map((g) => new Float64Array(g.size).fill(1));
    this.lastLog = plan.groups.map((g) => new Float64Array(host ? g.size : 0));
    this.schedules = compileSchedules({ plan, layout, base: at, p: options.p, c: options.c, recordScales: host });
    this.layout = layout;
    this.at = at;
  }

  /**
   * Copies the network's tensors (and companions) into engine memory. If any value is not finite
   * (an SGD step diverged, say), throws E_NONFINITE naming the tensor; the arrays are not touched.
   */
  upload(): void {
    this.copyIn('upload', true);
  }

  /** upload() with (scan) or without the finiteness scan of each copied array; `what` names the call in errors. */
  private copyIn(what: 'upload' | 'step', scan: boolean): void {
    const { k, f32 } = this.host(what);
    checkArrays(this.plan, this.lengths, `${what}()`);
    this.discardSums();
    this.plan.tensors.forEach((t, i) => {
      this.arrayPointers(i).forEach((ptr, j) => {
        const data = j === 0 ? t.data : t.companions[j - 1];
        f32.set(data, ptr >>> 2);
        if (!scan) return;
        const bad = k.firstNonFinite(ptr, data.length);
        if (bad >= 0) throw nonFiniteError(t, j, bad, data[bad]);
      });
    });
  }

  /** Byte pointers of plan tensor i (j = 0) and of its companions (j = 1, 2, ...), in engine memory. */
  arrayPointers(i: number): number[] {
    return [this.tensorPointers[i], ...this.companionPointers[i]];
  }

  /**
   * Plan tensor i (`plan.tensors[i]`) in engine memory: a Float32Array of `lengths[i]` elements
   * that aliases the engine's copy, so writing it writes what the next cycle() balances, and
   * reading it after cycle() reads the balanced values (no download()). After writing, call
   * discardSums() before the next cycle(). Host engines only (E_STATE on a device engine).
   * This path checks no value: upload()'s E_NONFINITE and download()'s E_OVERFLOW do not run, and
   * a cycle on a non-finite weight writes non-finite values; check the views if a step may diverge.
   *
   * A view is built on each call from the backend's current buffer. Views detach only when that
   * buffer is replaced, and each engine has its own Wasm instance (or ArrayBuffer) that grows once,
   * when the engine is created: creating or running other engines never detaches them. Drop
   * them at dispose(): the memory of a disposed Wasm engine goes back to a pool, and a kept view
   * would then read and write the memory of the next engine that reuses it.
   */
  tensor(i: number): Float32Array {
    return this.resident('tensor', i, 0);
  }

  /** Companion j (`plan.tensors[i].companions[j]`, momentum say) of plan tensor i in engine memory; as tensor(i). */
  companion(i: number, j: number): Float32Array {
    return this.resident('companion', i, j);
  }

  /** The view of tensor(i) (j unused) or companion(i, j); E_OPTION for an index out of range. */
  private resident(what: 'tensor' | 'companion', i: number, j: number): Float32Array {
    const { f32 } = this.host(what);
    const call = what === 'tensor' ? `tensor(${i})` : `companion(${i}, ${j})`;
    const count = this.plan.tensors.length;
    if (!isIndex(i, count)) throw new ENormError('E_OPTION', `${call}: tensor index ${i} is out of range; the plan has ${count} tensors (0 to ${count - 1})`);
    const t = this.plan.tensors[i];
    const slot = what === 'tensor' ? 0 : j + 1;
    if (what === 'companion' && !isIndex(j, t.companions.length)) {
      const has = t.companions.length;
      throw new ENormError('E_OPTION', `${call}: companion index ${j} is out of range; layer '${t.layer}' ${t.role} has ${has} companion${has === 1 ? '' : 's'}`, { layerIndex: t.layerIndex, layer: t.layer, tensor: t.role });
    }
    const at = this.arrayPointers(i)[slot] >>> 2;
    return f32.subarray(at, at + this.lengths[i]);
  }

  /**
   * The weights in engine memory were replaced: the next cycle() starts from them, with every
   * pending scale at 1 and the constant sums of single-view tensors recomputed. upload() and
   * DeviceStep.record call it; an embedder that writes resident tensors (tensor(i), companion(i, j))
   * or engine memory itself must call it after writing (after materialise(): scales still pending
   * are dropped, as the values they would have scaled were overwritten). Without it the next cycle()
   * reuses sums of the old weights: it still rescales function-preservingly, but not by an ENorm
   * cycle of the new weights.
   */
  discardSums(): void {
    if (this.pending && this.f32) this.foldScales();
    this.pending = false;
    this.fresh = true;
  }

  /**
   * Writes engine memory back into the network's arrays, after materialise() when scales are
   * pending. If any value is not finite, throws E_OVERFLOW naming the tensor and writes nothing.
   */
  download(): void {
    this.host('download');
    checkArrays(this.plan, this.lengths, 'download()');
    if (this.pending) this.materialise();
    else this.plan.tensors.forEach((_, i) => this.scan(i));
    this.copyOut();
  }

  /** Engine memory into the network's arrays, checked (finite, lengths) by the caller. */
  private copyOut(): void {
    const { f32 } = this.host('download');
    this.plan.tensors.forEach((t, i) => {
      const n = this.lengths[i];
      this.arrayPointers(i).forEach((ptr, j) => {
        const data = j === 0 ? t.data : t.companions[j - 1];
        data.set(f32.subarray(ptr >>> 2, (ptr >>> 2) + n));
      });
    });
  }

  /**
   * One ENorm cycle (docs/ALGORITHM.md sections 3 and 3b): replays the compiled schedule
   * (schedule.ts), after the fresh one when the weights were replaced. It reads the weights and
   * updates the pending scales; call materialise() (or download()) to apply them.
   *
   * omega (default 1, the exact cycle the paper's training recipe uses) over-relaxes every unit's
   * step in log scale, u <- u + omega (u* - u), 0 < omega < 2 (section 3c); balance() picks it.
   */
  cycle(omega = 1): void {
    if (!(typeof omega === 'number' && omega > 0 && omega < 2)) {
      throw new ENormError('E_OPTION', `cycle(omega): omega must be a number in (0, 2), got ${String(omega)}`);
    }
    this.omega = omega;
    this.lastChange = 0;
    if (this.fresh) {
      this.replay(this.schedules.fresh);
      for (const l of this.lastLog) l.fill(0);
    }
    this.fresh = false;
    this.replay(this.schedules.cycle);
    this.pending = true;
  }

  /**
   * Applies the pending scales: W := W * sigma * sigma' (companions by the inverses), one pass per
   * tensor, with the finiteness check fused into it. Nothing to do when no cycle ran since the last
   * one. Host engines throw E_OVERFLOW naming the first tensor with a NaN / Inf (the pass has run:
   * engine memory holds the values, the network's arrays are not touched). Afterwards the engine
   * memory holds the balanced weights (tensor(i) reads them) and the next cycle starts afresh.
   */
  materialise(): void {
    if (!this.pending) return;
    const host = this.f32 !== null;
    if (host) this.foldScales();
    this.pending = false;
    this.fresh = true;
    const { k } = this;
    let bad: { tensor: number; slot: number } | null = null;
    for (const s of this.schedules.materialise) {
      const flag = k.scaleBoth(s.w, s.outer, s.outerStride, s.count, s.inner, s.s, s.g, s.a, s.b);
      if (flag === 1 && !bad) bad = { tensor: s.tensor, slot: s.slot };
    }
    if (!host) return;
    if (bad) this.scan(bad.tensor, bad.slot);
    for (const i of this.schedules.unchecked) this.scan(i);
  }

  private replay(steps: Step[]): void {
    const { k, omega } = this;
    for (const s of steps) {
      switch (s.op) {
        case 'accumulate': k.accumulate(s.w, s.outer, s.outerStride, s.count, s.inner, s.acc, s.p); break;
        case 'accumulateScaled': k.accumulateScaled(s.w, s.outer, s.outerStride, s.count, s.inner, s.s, s.acc, s.p, s.mode, s.a, s.b); break;
        case 'scale': k.scale(s.w, s.outer, s.outerStride, s.count, s.inner, s.s); break;
        case 'solve': k.solve(s.sums, s.size, s.p, s.c, omega, s.logSigma, s.sigma, s.sigmaInv, s.d, s.dInv, s.energy); break;
        case 'zero': k.zero(s.ptr, s.bytes); break;
        case 'fill': k.fill(s.ptr, s.n, s.x); break;
        case 'copy': k.copy(s.dst, s.src, s.bytes); break;
        case 'recordScales': this.recordScales(s.group); break;
      }
    }
  }

  /** E_OVERFLOW for the first NaN / Inf of plan tensor i (every slot, or only `slot`), if any. */
  private scan(i: number, slot?: number): void {
    const { k, f32 } = this.host('materialise');
    const t = this.plan.tensors[i];
    const n = this.lengths[i];
    this.arrayPointers(i).forEach((ptr, j) => {
      if (slot !== undefined && j !== slot) return;
      const bad = k.firstNonFinite(ptr, n);
      if (bad >= 0) throw overflowError(t, j, bad, f32[(ptr >>> 2) + bad]);
    });
  }

  /**
   * Group g's step just updated log sigma: the cycle's max |log d_i| follows, from the f64 logs
   * (the f32 d would round every step below 6e-8 to 0 or one ulp).
   */
  private recordScales(g: number): void {
    const log = this.logSigma(g);
    const last = this.lastLog[g];
    let change = this.lastChange;
    for (let i = 0; i < last.length; i++) {
      change = Math.max(change, Math.abs(log[i] - last[i]));
      last[i] = log[i];
    }
    this.lastChange = change;
  }

  /** totals *= sigma: the pending scales join the cumulative ones (host engines). */
  private foldScales(): void {
    this.totals.forEach((total, g) => {
      const log = this.logSigma(g);
      for (let i = 0; i < total.length; i++) total[i] *= Math.exp(log[i]);
    });
  }

  /** Group g's pending log sigma (f64, host memory). */
  private logSigma(g: number): Float64Array {
    this.refreshViews();
    return new Float64Array(this.f32!.buffer, this.at + this.layout.logSigma + 8 * this.layout.unitOffset[g], this.totals[g].length);
  }

  /**
   * max over units of |log d_i| in the last cycle(): how far it moved the scales (0 before any cycle,
   * or when nothing moved). The p = Infinity stopping quantity; reported for every p.
   */
  maxScaleChange(): number {
    this.host('maxScaleChange');
    return this.lastChange;
  }

  /**
   * E = sum over cost tensors of sum |w|^p (of max |w| for p = Infinity), of the engine's current
   * values. After a cycle, where every cost tensor has a view its last group step summed
   * (schedule.ts freeEnergy: chains, conv stacks, residual nets with finite p), it is the sum of
   * the energies those steps computed, with no pass over the weights; otherwise the pending scales
   * are materialised first and the weights are read.
   */
  energy(): number {
    const { k, f32 } = this.host('energy');
    const { p } = this.options;
    let e = 0;
    if (this.pending && this.schedules.freeEnergy) {
      const f64 = new Float64Array(f32.buffer, this.at + this.layout.energies, this.plan.groups.length);
      for (let g = 0; g < f64.length; g++) e += f64[g];
      // Cost tensors in no group never change.
      for (const i of this.schedules.untouched) if (this.plan.tensors[i].cost) e += k.energy(this.tensorPointers[i], this.lengths[i], p);
      return e;
    }
    this.materialise();
    this.plan.tensors.forEach((t, i) => { if (t.cost) e += k.energy(this.tensorPointers[i], this.lengths[i], p); });
    return e;
  }

  /**
   * upload(), cycle(), download(): one ENorm cycle on the network's arrays, e.g. after an SGD step,
   * with the same errors and the arrays untouched on any of them. Host engines skip upload()'s
   * finiteness scan: a NaN / Inf input stays NaN / Inf through the cycle (its units' sums are NaN or
   * Inf, so they do not move) and through the scaling, so materialise()'s fused check sees it. Only
   * then are the arrays scanned, to tell E_NONFINITE (an input, upload()'s error) from E_OVERFLOW,
   * and the cumulative scales and maxScaleChange() are put back as they were before the step.
   */
  step(): void {
    if (this.f32 === null) {
      this.upload();
      this.cycle();
      this.download();
      return;
    }
    const totals = this.totals.map((t) => t.slice());
    const lastChange = this.lastChange;
    this.copyIn('step', false);
    try {
      this.cycle();
      this.materialise();
    } catch (e) {
      if (!(e instanceof ENormError && e.code === 'E_OVERFLOW')) throw e;
      // materialise() has already left the engine fresh (nothing pending): only the bookkeeping goes back.
      totals.forEach((t, g) => this.totals[g].set(t));
      this.lastChange = lastChange;
      this.throwOnNonFiniteInput();
      throw e;
    }
    // download() without its checks: materialise() checked every value, no user code ran since copyIn.
    this.copyOut();
  }

  /** upload()'s E_NONFINITE for the first NaN / Inf of the network's arrays, in upload() order, if any. */
  private throwOnNonFiniteInput(): void {
    for (const t of this.plan.tensors) {
      [t.data, ...t.companions].forEach((data, j) => {
        const bad = data.findIndex((x) => !Number.isFinite(x));
        if (bad >= 0) throw nonFiniteError(t, j, bad, data[bad]);
      });
    }
  }

  /** Cumulative scale of every unit since the engine was created (pending ones included). */
  scales(): GroupScales[] {
    this.host('scales');
    return this.plan.groups.map((g, i) => {
      const scales = Float64Array.from(this.totals[i]);
      if (this.pending) {
        const log = this.logSigma(i);
        for (let u = 0; u < scales.length; u++) scales[u] *= Math.exp(log[u]);
      }
      return { group: g.name, layers: [...g.layers], scales };
    });
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

const NO_ARRAY = new Float32Array(0);

/** Whether i is an integer index into a list of `count` items. */
const isIndex = (i: number, count: number): boolean => Number.isInteger(i) && i >= 0 && i < count;

/** The plan without the network's arrays: what a device engine keeps (names, roles, views). */
function withoutArrays(plan: Plan): Plan {
  const tensors = plan.tensors.map((t): TensorSlot => ({ ...t, data: NO_ARRAY, companions: t.companions.map(() => NO_ARRAY) }));
  return { ...plan, tensors };
}
