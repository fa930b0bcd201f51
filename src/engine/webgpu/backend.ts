/**
 * The cycle kernels on a WebGPU device. Kernel calls are recorded, then `encode` puts them into
 * one compute pass (a 64-byte parameter block per dispatch at a dynamic uniform offset). The
 * engine memory is one storage buffer the caller copies tensors into and out of.
 */
import { ENormError } from '../../errors.js';
import { CrossMode, type CycleKernels, type DeviceBackend } from '../backend.js';
import { align16 } from '../memory.js';
import { NO_SCALE, packParams, PARAM_WORDS, SHADERS, SUM_CHUNK, WORKGROUP, type ParamValues, type ShaderName } from './shaders.js';

/** Bytes between parameter blocks: WebGPU's largest allowed minUniformBufferOffsetAlignment. */
const PARAM_STRIDE = 256;
const NONE = 0xffffffff;

interface Call {
  shader: ShaderName;
  params: Uint32Array;
  workgroups: number;
}

export class WebGPUBackend implements DeviceBackend {
  readonly name = 'webgpu' as const;
  readonly kernels: CycleKernels;
  readonly device: GPUDevice;
  private readonly layout: GPUBindGroupLayout;
  private readonly pipelines: Record<ShaderName, GPUComputePipeline>;
  private readonly maxWorkgroups: number;
  private reserved = 16; // pointer 0 is never handed out
  private memoryBuffer: GPUBuffer | null = null;
  private paramBuffer: GPUBuffer | null = null;
  private uploaded = new Uint32Array(0);
  private statusBuffer: GPUBuffer | null = null;
  private statusRead: GPUBuffer | null = null;
  private scratchBuffer: GPUBuffer | null = null;
  private scratchWords = 1;
  private bindGroup: GPUBindGroup | null = null;
  private calls: Call[] = [];
  private statusSlots = 0;
  private statusPending = false;
  /** Why the device was lost, once it was. */
  private lostReason: string | null = null;

  /** Compiles the kernels on `device` (for tfjs: the webgpu backend's own device). */
  static async create(device: GPUDevice): Promise<WebGPUBackend> {
    const layout = device.createBindGroupLayout({
      entries: [
        { binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'storage' } },
        { binding: 1, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform', hasDynamicOffset: true, minBindingSize: 4 * PARAM_WORDS } },
        { binding: 2, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'storage' } },
        { binding: 3, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'storage' } },
      ],
    });
    const pipelineLayout = device.createPipelineLayout({ bindGroupLayouts: [layout] });
    device.pushErrorScope('validation');
    const compiled = await Promise.all(
      (Object.keys(SHADERS) as ShaderName[]).map(async (name) => {
        const module = device.createShaderModule({ code: SHADERS[name], label: `enorm-${name}` });
        const pipeline = await device.createComputePipelineAsync({ layout: pipelineLayout, compute: { module, entryPoint: 'main' }, label: `enorm-${name}` });
        return [name, pipeline] as const;
      }),
    ).catch((e: unknown) => e as Error); // a GPUPipelineError rejects instead of reaching the scope
    const error = await device.popErrorScope();
    if (error || !Array.isArray(compiled)) {
      const why = error?.message ?? (compiled as Error).message;
      throw new ENormError('E_DEVICE', `the WebGPU device rejected enorm's kernels: ${why}`);
    }
    return new WebGPUBackend(device, layout, Object.fromEntries(compiled) as Record<ShaderName, GPUComputePipeline>);
  }

  private constructor(device: GPUDevice, layout: GPUBindGroupLayout, pipelines: Record<ShaderName, GPUComputePipeline>) {
    this.device = device;
    this.layout = layout;
    this.pipelines = pipelines;
    this.maxWorkgroups = device.limits.maxComputeWorkgroupsPerDimension;
    // Recorded, then refused: a lost device runs nothing and maps nothing (E_DEVICE).
    void device.lost?.then((info) => { this.lostReason = info.message || String(info.reason); });
    const view = (w: number, outer: number, outerStride: number, count: number, inner: number) => ({ w: w >>> 2, outer, outerStride, count, inner });
    const empty = (outer: number, count: number, inner: number) => outer < 1 || count < 1 || inner < 1;
    const elements = (outer: number, count: number, inner: number) => Math.ceil((outer * count * inner) / WORKGROUP);
    const reduce = (v: ReturnType<typeof view>, s: number, acc: number, p: number, mode: number, a: number, b: number) => {
      // Most terms any idx has: ceil(blocks / b) key blocks of a keys, times the other two extents.
      const { outer, count, inner } = v;
      const [extent, plane] = mode === CrossMode.outer ? [outer, count * inner] : mode === CrossMode.inner ? [inner, outer * count] : [count, outer * inner];
      const terms = Math.ceil(Math.ceil(extent / a) / b) * a * plane;
      const chunks = Math.max(1, Math.ceil(terms / SUM_CHUNK));
      this.scratchWords = Math.max(this.scratchWords, b * chunks);
      this.record('partialSums', { ...v, s, p, mode, a, b, chunks }, Math.ceil((b * chunks) / WORKGROUP));
      this.record('gatherSums', { acc: acc >>> 2, b, chunks, p }, Math.ceil(b / WORKGROUP));
    };
    const fill = (ptr: number, n: number, x: number) => {
      if (n > 0) this.record('fill', { w: ptr >>> 2, n, x }, Math.ceil(n / WORKGROUP));
    };
    this.kernels = {
      accumulate: (w, outer, outerStride, count, inner, acc, p) => {
        if (!empty(outer, count, inner)) reduce(view(w, outer, outerStride, count, inner), NO_SCALE, acc, p, CrossMode.unit, 1, count);
      },
      scale: (w, outer, outerStride, count, inner, s) => {
        if (empty(outer, count, inner)) return;
        this.record('scale', { ...view(w, outer, outerStride, count, inner), s: s >>> 2 }, elements(outer, count, inner));
      },
      accumulateScaled: (w, outer, outerStride, count, inner, s, acc, p, mode, a, b) => {
        if (!empty(outer, count, inner)) reduce(view(w, outer, outerStride, count, inner), s >>> 2, acc, p, mode, a, b);
      },
      scaleBoth: (w, outer, outerStride, count, inner, s, g, a, b) => {
        if (empty(outer, count, inner)) return;
        this.record('scaleBoth', { ...view(w, outer, outerStride, count, inner), s: s >>> 2, g: g >>> 2, a, b }, elements(outer, count, inner));
      },
      // The exponents in f64 (c = 1e-80 is 0 in f32). `energy` is left unwritten (allowed on a
      // device): the device engine never reads it.
      solve: (sums, count, p, c, omega, logSigma, sigma, sigmaInv, d, dInv) => {
        if (count < 1) return;
        const words = { sums: sums >>> 2, logSigma: logSigma >>> 2, sigma: sigma >>> 2, sigmaInv: sigmaInv >>> 2, d: d >>> 2, dInv: dInv >>> 2 };
        const e = p === Infinity ? 0.5 : 1 / (2 * p);
        this.record('solve', { ...words, count, e, h: Math.log2(c) / 2, omega }, Math.ceil(count / WORKGROUP));
      },
      zero: (ptr, bytes) => fill(ptr, bytes >>> 2, 0),
      fill,
      copy: (dst, src, bytes) => {
        const n = bytes >>> 2;
        if (n > 0) this.record('copy', { dst: dst >>> 2, src: src >>> 2, n }, Math.ceil(n / WORKGROUP));
      },
    };
  }

  reserve(bytes: number): number {
    if (this.memoryBuffer) throw new ENormError('E_STATE', 'WebGPUBackend.reserve: the memory is already in use; use one backend per engine');
    if (!Number.isSafeInteger(bytes) || bytes < 0) throw new ENormError('E_MEMORY', `WebGPUBackend.reserve: cannot reserve ${String(bytes)} bytes`);
    const at = this.reserved;
    // The kernels take u32 word pointers (byte pointer >>> 2): byte pointers stay below 2^32.
    if (align16(at + bytes) > 2 ** 32) {
      throw new ENormError('E_MEMORY', `WebGPUBackend.reserve: ${at + bytes} bytes of engine memory exceed the 4 GiB that u32 pointers address`);
    }
    this.reserved = align16(at + bytes);
    return at;
  }

  /** The engine memory (STORAGE | COPY_SRC | COPY_DST, zero-initialised), created on first use. */
  get memory(): GPUBuffer {
    const limit = this.device.limits.maxStorageBufferBindingSize;
    if (this.reserved > limit) {
      throw new ENormError('E_MEMORY', `the network needs ${this.reserved} bytes of engine memory; this WebGPU device binds at most ${limit} (maxStorageBufferBindingSize)`);
    }
    this.memoryBuffer ??= this.device.createBuffer({
      label: 'enorm-memory',
      size: this.reserved,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
    return this.memoryBuffer;
  }

  /**
   * Records a scan of n f32 at byte pointer ptr for NaN / Inf; returns its status slot, whose
   * value `readStatus` gives: the first bad index, or -1.
   */
  scanFinite(ptr: number, n: number): number {
    const slot = this.statusSlots++;
    if (n > 0) this.record('scanFinite', { w: ptr >>> 2, n, slot }, Math.ceil(n / WORKGROUP));
    return slot;
  }

  /**
   * Puts every recorded call, in order, into one compute pass on `encoder` (then a copy of the
   * status slots for `readStatus`). Submit the encoder before calling readStatus.
   */
  encode(encoder: GPUCommandEncoder): void {
    this.checkDevice();
    const calls = this.calls;
    this.calls = [];
    this.prepare(calls);
    const pass = encoder.beginComputePass({ label: 'enorm-cycle' });
    calls.forEach((call, k) => {
      pass.setPipeline(this.pipelines[call.shader]);
      pass.setBindGroup(0, this.bindGroup!, [k * PARAM_STRIDE]);
      const x = Math.min(call.workgroups, this.maxWorkgroups);
      pass.dispatchWorkgroups(x, Math.ceil(call.workgroups / x));
    });
    pass.end();
    if (this.statusSlots > 0) {
      encoder.copyBufferToBuffer(this.statusBuffer!, 0, this.statusRead!, 0, 4 * this.statusSlots);
      this.statusPending = true;
    }
  }

  /** The status slots recorded since the last read: first non-finite index per slot, or -1. */
  async readStatus(): Promise<Int32Array> {
    if (!this.statusPending) throw new ENormError('E_STATE', 'WebGPUBackend.readStatus: no scan was encoded');
    const n = this.statusSlots;
    this.statusPending = false;
    this.statusSlots = 0;
    this.checkDevice();
    try {
      await this.statusRead!.mapAsync(GPUMapMode.READ, 0, 4 * n);
    } catch (e) {
      this.checkDevice();
      throw new ENormError('E_DEVICE', `WebGPUBackend.readStatus: the status could not be read back (${e instanceof Error ? e.message : String(e)})`);
    }
    const out = new Int32Array(this.statusRead!.getMappedRange(0, 4 * n).slice(0));
    this.statusRead!.unmap();
    return out;
  }

  /** E_DEVICE once the device is lost: nothing recorded would run. */
  checkDevice(): void {
    if (this.lostReason !== null) throw new ENormError('E_DEVICE', `the WebGPU device was lost (${this.lostReason}); create a new device and a new backend`);
  }

  /** Frees the device buffers; the backend cannot be used afterwards. */
  destroy(): void {
    for (const b of [this.memoryBuffer, this.paramBuffer, this.statusBuffer, this.statusRead, this.scratchBuffer]) b?.destroy();
    this.memoryBuffer = this.paramBuffer = this.statusBuffer = this.statusRead = this.scratchBuffer = null;
    this.bindGroup = null;
  }

  private record<N extends ShaderName>(shader: N, values: ParamValues<N>, workgroups: number): void {
    this.calls.push({ shader, params: packParams(shader, values), workgroups });
  }

  /** Uploads the parameter blocks (only when they changed) and resets the status slots. */
  private prepare(calls: Call[]): void {
    const memory = this.memory;
    const stride = PARAM_STRIDE / 4;
    const blocks = new Uint32Array(Math.max(1, calls.length) * stride);
    calls.forEach((c, k) => blocks.set(c.params, k * stride));
    const { UNIFORM, STORAGE, COPY_SRC, COPY_DST, MAP_READ } = GPUBufferUsage;
    const before = [this.paramBuffer, this.statusBuffer, this.scratchBuffer];
    const statusBytes = 4 * Math.max(1, this.statusSlots);
    this.paramBuffer = this.atLeast(this.paramBuffer, blocks.byteLength, 'enorm-params', UNIFORM | COPY_DST);
    this.statusBuffer = this.atLeast(this.statusBuffer, statusBytes, 'enorm-status', STORAGE | COPY_SRC | COPY_DST);
    this.statusRead = this.atLeast(this.statusRead, statusBytes, 'enorm-status-read', MAP_READ | COPY_DST);
    this.scratchBuffer = this.atLeast(this.scratchBuffer, 4 * this.scratchWords, 'enorm-scratch', STORAGE);
    if (this.paramBuffer !== before[0]) this.uploaded = new Uint32Array(0); // a new buffer holds no blocks
    if (blocks.length !== this.uploaded.length || blocks.some((x, k) => x !== this.uploaded[k])) {
      this.device.queue.writeBuffer(this.paramBuffer, 0, blocks);
      this.uploaded = blocks;
    }
    const rebind = this.bindGroup === null || [this.paramBuffer, this.statusBuffer, this.scratchBuffer].some((b, k) => b !== before[k]);
    if (this.statusSlots > 0) this.device.queue.writeBuffer(this.statusBuffer, 0, new Uint32Array(this.statusSlots).fill(NONE));
    if (rebind) {
      this.bindGroup = this.device.createBindGroup({
        layout: this.layout,
        entries: [
          { binding: 0, resource: { buffer: memory } },
          { binding: 1, resource: { buffer: this.paramBuffer, size: 4 * PARAM_WORDS } },
          { binding: 2, resource: { buffer: this.statusBuffer } },
          { binding: 3, resource: { buffer: this.scratchBuffer } },
        ],
      });
    }
  }

  /** `buffer` if it holds `bytes`, else a new one (the old one destroyed). */
  private atLeast(buffer: GPUBuffer | null, bytes: number, label: string, usage: number): GPUBuffer {
    if (buffer && buffer.size >= bytes) return buffer;
    buffer?.destroy();
    return this.device.createBuffer({ label, size: bytes, usage });
  }
}
