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
  'upload', 'arrayPointers', 'tensor', 'companion', 'discardSums', 'download', 'cycle', 'energy', 'step', 'scales', 'maxScaleChange',
] as const;

/**
 * A network bound to a kernel backend, with its plan and scratch memory laid out once, for
 * running ENorm cycles repeatedly (for example after every SGD step).
 *
 * The engine works on its own copy of the tensors: `upload()` copies the network's arrays in,
 * `cycle()` balances the copy, `download()` writes it back. `step()` does all three.
 * On a DeviceBackend (`ENorm.onDevice`) only `cycle()` runs here, and the plan keeps no host
 * array; enorm/webgpu's `DeviceStep` moves the tensors in and out and checks them.
 *
 * Resident tensors (host engines): an embedder may keep its weights and companions in engine
 * memory instead, writing them through `tensor(i)` / `companion(i, j)`, then calling
 * `discardSums()` and `cycle()`: no upload() or download() per step.
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
  /** The cycle compiled once (schedule.ts), and the one the next cycle() replays. */
  private readonly schedules: Schedules;
  private next: Step[];
  /** Cumulative scale of every unit of group g (host engines). */
  private readonly totals: Float64Array[];
  /** max |log d| over the units the last cycle() moved (host engines). */
  private lastChange = 0;
  private readonly d: number;
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
    this.d = at + layout.d;
    this.tensorPointers = layout.tensors.map((offset) => at + offset);
    this.companionPointers = layout.companions.map((list) => list.map((offset) => at + offset));
    this.f32 = host ? new Float32Array(backend.buffer) : null;
    this.totals = plan.groups.map((g) => new Float64Array(g.size).fill(1));
    this.schedules = compileSchedules({ plan, layout, base: at, p: options.p, c: options.c, recordScales: host });
    this.next = this.schedules.fresh;
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
   * The weights in engine memory were replaced: the next cycle() runs the fresh schedule, which
   * zeroes the sums and computes each from the new weights. upload() and DeviceStep.record call
   * it; an embedder that writes resident tensors (tensor(i), companion(i, j)) or engine memory
   * itself must call it after writing. Without it the next cycle() runs the steady schedule, whose
   * sums a fused pass of the previous cycle left from the old weights: it still rescales
   * function-preservingly, but with scales d computed partly from stale sums (not an ENorm cycle
   * of the new weights).
   */
  discardSums(): void {
    this.next = this.schedules.fresh;
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
   * One ENorm cycle (docs/ALGORITHM.md section 3): replays the compiled schedule (schedule.ts),
   * the fresh one after the weights were replaced, else the steady one. Only the choice of the
   * next schedule changes.
   */
  cycle(): void {
    const { k } = this;
    this.lastChange = 0;
    for (const s of this.next) {
      switch (s.op) {
        case 'accumulate': k.accumulate(s.w, s.outer, s.outerStride, s.count, s.inner, s.acc, s.p); break;
        case 'scale': k.scale(s.w, s.outer, s.outerStride, s.count, s.inner, s.s); break;
        case 'scaleAccumulate': k.scaleAccumulate(s.w, s.outer, s.outerStride, s.count, s.inner, s.s, s.acc, s.p, s.mode, s.a, s.b); break;
        case 'solve': k.solveScales(s.incoming, s.outgoing, s.size, s.p, s.c, s.d, s.dInv); break;
        case 'zero': k.zero(s.ptr, s.bytes); break;
        case 'recordScales': this.recordScales(s.group); break;
      }
    }
    this.next = this.schedules.steady;
  }

  /** total_i *= d_i for the units of group g, read from host memory; the cycle's max |log d_i| follows. */
  private recordScales(g: number): void {
    this.refreshViews();
    const f32 = this.f32!;
    const total = this.totals[g];
    const d0 = this.d >>> 2;
    let change = this.lastChange;
    for (let i = 0; i < total.length; i++) {
      total[i] *= f32[d0 + i];
      change = Math.max(change, Math.abs(Math.log(f32[d0 + i])));
    }
    this.lastChange = change;
  }

  /**
   * max over units of |log d_i| in the last cycle(): how far it moved the scales (0 before any cycle,
   * or when nothing moved). The p = Infinity stopping quantity; reported for every p.
   */
  maxScaleChange(): number {
    this.host('maxScaleChange');
    return this.lastChange;
  }

  /** E = sum over cost tensors of sum |w|^p (of max |w| for p = Infinity), on the engine's copy. */
  energy(): number {
    const { k } = this.host('energy');
    let e = 0;
    this.plan.tensors.forEach((t, i) => { if (t.cost) e += k.energy(this.tensorPointers[i], this.lengths[i], this.options.p); });
    return e;
  }

  /** upload(), cycle(), download(): one ENorm cycle on the network's arrays, e.g. after an SGD step. */
  step(): void {
    this.upload();
    this.cycle();
    this.download();
  }

  /** Cumulative scale of every unit since the engine was created. */
  scales(): GroupScales[] {
    this.host('scales');
    return this.plan.groups.map((g, i) => ({ group: g.name, layers: [...g.layers], scales: Float64Array.from(this.totals[i]) }));
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
