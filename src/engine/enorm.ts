import { ENormError } from '../errors.js';
import { compilePlan } from '../network/compile.js';
import type { Network } from '../network/layers.js';
import { validateLayers } from '../network/validate.js';
import type { Backend, BackendName, Kernels } from './backend.js';
import { resolveOptions, type BalanceOptions, type ENormOptions, type ResolvedOptions } from './options.js';
import { planFusion, type CrossIndex, type ViewRef } from './fusion.js';
import type { Barrier, Plan, View } from './plan.js';
import { createBackend } from './select.js';

/** Cumulative scale d of every unit of one group since the engine was created. */
export interface GroupScales {
  group: string;
  layers: string[];
  scales: Float64Array;
}

export interface BalanceReport {
  /** E = sum over weight tensors of ||W||_p^p (plus biases with includeBiases), before the first cycle. */
  energyBefore: number;
  energyAfter: number;
  /** Energy after each cycle. */
  energies: number[];
  cycles: number;
  /** The relative energy change of the last cycle was at most `tolerance`. */
  converged: boolean;
  scales: GroupScales[];
  /** Units that were left at scale 1, and why (non-homogeneous activations, residual mode, ...). */
  barriers: Barrier[];
  backend: BackendName;
  /** Number of groups and of units balanced. */
  groups: number;
  units: number;
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

const align16 = (n: number) => (n + 15) & ~15;

/**
 * A network bound to a kernel backend, with its plan and scratch memory laid out once, for
 * running ENorm cycles repeatedly (for example after every SGD step).
 *
 * The engine works on its own copy of the tensors: `upload()` copies the network's arrays in,
 * `cycle()` balances the copy, `download()` writes it back. `step()` does all three.
 */
export class ENorm {
  readonly plan: Plan;
  readonly backend: Backend;
  readonly options: Readonly<ResolvedOptions>;
  private readonly k: Kernels;
  private readonly groups: BoundGroup[];
  private readonly tensorPtr: number[];
  private readonly companionPtr: number[][];
  private readonly sums: number;
  private readonly sumsBytes: number;
  private readonly d: number;
  private readonly dInv: number;
  private f32!: Float32Array;

  /**
   * Validates the network and options (throws ENormError, touching nothing), lays out engine
   * memory and uploads the network's current arrays.
   */
  static async create(net: Network, options: ENormOptions = {}): Promise<ENorm> {
    const resolved = resolveOptions(options);
    validateLayers(net);
    const plan = compilePlan(net, resolved);
    const backend = await createBackend(resolved.backend);
    const engine = new ENorm(plan, backend, resolved);
    engine.upload();
    return engine;
  }

  private constructor(plan: Plan, backend: Backend, options: ResolvedOptions) {
    this.plan = plan;
    this.backend = backend;
    this.options = options;
    this.k = backend.kernels;

    const maxUnits = Math.max(1, ...plan.groups.map((g) => g.size));
    const sumsBytes = plan.groups.reduce((a, g) => a + 2 * align16(8 * g.size), 0);
    let bytes = align16(sumsBytes) + 2 * align16(4 * maxUnits);
    for (const t of plan.tensors) bytes += align16(4 * t.data.length) * (1 + t.companions.length);
    let at = backend.reserve(bytes);
    const take = (n: number) => { const p = at; at += align16(n); return p; };
    this.sums = take(sumsBytes);
    this.sumsBytes = sumsBytes;
    this.d = take(4 * maxUnits);
    this.dInv = take(4 * maxUnits);
    this.tensorPtr = plan.tensors.map((t) => take(4 * t.data.length));
    this.companionPtr = plan.tensors.map((t) => t.companions.map((m) => take(4 * m.length)));
    this.f32 = new Float32Array(backend.buffer);

    const bind = (v: View): BoundView => ({
      w: this.tensorPtr[v.tensor] + 4 * v.start,
      outer: v.outer,
      outerStride: v.outerStride,
      count: v.count,
      inner: v.inner,
      acc: 8 * v.unitStart,
      sc: 4 * v.unitStart,
      companions: this.companionPtr[v.tensor].map((p) => p + 4 * v.start),
      fuse: null,
      ready: false,
    });
    let sumsAt = this.sums;
    this.groups = plan.groups.map((g) => {
      const incoming = sumsAt;
      const outgoing = incoming + align16(8 * g.size);
      sumsAt = outgoing + align16(8 * g.size);
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
      view.fuse = { partner: view, sums: sums + view.acc, cross: { mode: 2, a: 1, b: view.count } };
    }
  }

  /** Copies the network's tensors (and companions) into engine memory. */
  upload(): void {
    this.refreshViews();
    // Sums gathered from the old weights are void.
    this.k.zero(this.sums, this.sumsBytes);
    for (const g of this.groups) for (const v of [...g.writers, ...g.readers]) v.ready = false;
    this.plan.tensors.forEach((t, i) => {
      this.f32.set(t.data, this.tensorPtr[i] >> 2);
      t.companions.forEach((m, j) => this.f32.set(m, this.companionPtr[i][j] >> 2));
    });
  }

  /**
   * Writes engine memory back into the network's arrays. If any value is not finite, throws
   * E_OVERFLOW naming the tensor and writes nothing.
   */
  download(): void {
    this.refreshViews();
    this.plan.tensors.forEach((t, i) => {
      const ptrs = [this.tensorPtr[i], ...this.companionPtr[i]];
      ptrs.forEach((ptr, j) => {
        const bad = this.k.firstNonFinite(ptr, t.data.length);
        if (bad >= 0) {
          const tensor = j === 0 ? t.role : `companion ${j - 1} of ${t.role}`;
          throw new ENormError('E_OVERFLOW', `layer '${t.layer}' ${tensor}[${bad}] became ${this.f32[(ptr >> 2) + bad]} while rescaling; no array was changed`, { layerIndex: t.layerIndex, layer: t.layer, tensor, index: bad });
        }
      });
    });
    this.plan.tensors.forEach((t, i) => {
      t.data.set(this.f32.subarray(this.tensorPtr[i] >> 2, (this.tensorPtr[i] >> 2) + t.data.length));
      t.companions.forEach((m, j) => {
        const p = this.companionPtr[i][j] >> 2;
        m.set(this.f32.subarray(p, p + m.length));
      });
    });
  }

  /**
   * One ENorm cycle (ENORM.md section 3), Gauss-Seidel over the groups in order. For each group:
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
      const dv = this.f32;
      const d0 = d >> 2;
      for (let i = 0; i < g.size; i++) g.total[i] *= dv[d0 + i];
    }
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
    let e = 0;
    this.plan.tensors.forEach((t, i) => { if (t.cost) e += this.k.energy(this.tensorPtr[i], t.data.length, this.options.p); });
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
    return this.plan.groups.map((g, i) => ({ group: g.name, layers: [...g.layers], scales: Float64Array.from(this.groups[i].total) }));
  }

  resetScales(): void {
    for (const g of this.groups) g.total.fill(1);
  }

  /** Number of units the engine balances. */
  get units(): number {
    return this.plan.groups.reduce((a, g) => a + g.size, 0);
  }

  private refreshViews(): void {
    if (this.f32.buffer !== this.backend.buffer) this.f32 = new Float32Array(this.backend.buffer);
  }
}

/**
 * Balances a network in place: ENorm cycles until the relative energy change is at most
 * `tolerance` or `maxCycles` cycles ran. On any error no array is changed.
 */
export async function balance(net: Network, options: BalanceOptions = {}): Promise<BalanceReport> {
  const { tolerance, maxCycles } = resolveOptions(options);
  const engine = await ENorm.create(net, options);
  const energyBefore = engine.energy();
  const energies: number[] = [];
  let converged = false;
  let previous = energyBefore;
  for (let cycle = 1; cycle <= maxCycles; cycle++) {
    engine.cycle();
    const e = engine.energy();
    energies.push(e);
    options.onCycle?.(cycle, e);
    if (Math.abs(previous - e) <= tolerance * previous) {
      converged = true;
      break;
    }
    previous = e;
  }
  engine.download();
  return {
    energyBefore,
    energyAfter: energies.length ? energies[energies.length - 1] : energyBefore,
    energies,
    cycles: energies.length,
    converged,
    scales: engine.scales(),
    barriers: engine.plan.barriers,
    backend: engine.backend.name,
    groups: engine.plan.groups.length,
    units: engine.units,
  };
}
