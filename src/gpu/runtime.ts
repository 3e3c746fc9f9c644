/**
 * The GPU runtime: one device, its buffer pool, pipeline cache, command batching and read-back.
 * This is the narrow waist between tensors and WebGPU: allocate / release / upload / dispatch /
 * copy / read. Nothing above src/gpu touches GPUDevice.
 */
import { BufferPool, memoryBudget, type PooledBuffer, type PoolStats } from './buffer-pool.js';
import { BindGroupCache } from './bind-groups.js';
import { readCaps, type AdapterCaps } from './caps.js';
import { DeviceLostError, GpuError, GpuOutOfMemoryError, InFlightLimitError } from './errors.js';
import { InFlightTracker } from './inflight.js';
import { numberedSource, PipelineCache, type KernelCompiledHook, type KernelSource } from './pipeline-cache.js';
import { Profiler } from './profiler.js';
import { type DynamicWord, type FusionPass, plannedBytes, Recorder, type ReplayProgram } from './recorder.js';
import { browserPlatform, type DiscoveryOptions, type Platform, type TuningCacheStore } from './platform.js';

export interface InitOptions extends DiscoveryOptions {
  /**
   * Where the adapter comes from and which defaults the environment gives. Default: the
   * browser's `navigator.gpu` when there is one, else Dawn in Node (src/gpu/node.ts, loaded on
   * demand so that this module stays free of Node imports).
   */
  platform?: Platform;
  /** Opt in to experimental features: subgroup matrices, f16 on NVIDIA (needs unsafe toggles). Node env: RAE_EXPERIMENTAL=1. */
  experimental?: boolean;
  /** Dispatches recorded before an automatic submit. */
  maxDispatchesPerSubmit?: number;
  /** Check every dispatch for validation errors synchronously (slow; for debugging). Node env: RAE_DEBUG=1. */
  debug?: boolean;
  /** Record per-dispatch GPU time with timestamp queries when the adapter has them. Node env: RAE_PROFILE=1. */
  profile?: boolean;
  /**
   * GPU commands (dispatches, copies, uploads) that may be submitted but not yet known finished
   * before recording more throws InFlightLimitError (see yieldIfBusy). Default 32768.
   */
  maxInFlight?: number;
  /**
   * Upload bytes that may be in flight likewise (Dawn stages them in host memory until the queue
   * passes them). Default: no bound, so that loading a large checkpoint synchronously still works.
   */
  maxInFlightUploadBytes?: number;
  /**
   * Memory budget in bytes for GPU buffers (live + pooled). Env RAE_MEMORY_LIMIT ('8GiB', 'none').
   * Default: half the host's available memory on a software adapter; none on a GPU.
   */
  memoryLimit?: number;
  /** Host memory available now, in bytes (read at the Node edge; sizes the software default). */
  hostAvailableMemory?: number;
  /** Called with each kernel's cache key and WGSL when it compiles (env RAE_DUMP_WGSL / RAE_LOG_COMPILES install one). */
  onKernelCompiled?: KernelCompiledHook;
  /** Autotune kernel configurations and cache the choices (src/kernels/tuning-store.ts). Node env: RAE_TUNE=1. Default off. */
  tune?: boolean;
  /** Measure again, ignoring cached choices (implies tune). */
  retune?: boolean;
  /** Where tuned choices are cached; Node: XDG_CACHE_HOME or ~/.cache/rae-webgpu. */
  tuningCache?: TuningCacheStore;
  /**
   * Wait for the GPU without keeping a CPU core busy (the platform's quietWaits: in Node, Dawn's
   * event polling every millisecond instead of a spin). Default: on for software adapters, whose
   * worker threads share the CPU; off for hardware ones. Node env: RAE_QUIET_WAITS=0|1.
   */
  quietWaits?: boolean;
}

/** Default bound on commands in flight: half the ~61,000 dispatches at which lavapipe crashed. */
/** Dispatches of one compiled-step replay that the profiler times (Dawn allows 4096 queries per set: two each). */
const PROFILED_REPLAY_DISPATCHES = 2048;
export const DEFAULT_MAX_IN_FLIGHT = 32768;
export const DEFAULT_MAX_IN_FLIGHT_UPLOAD_BYTES = Number.POSITIVE_INFINITY;

export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  backend: string;
  icd?: string;
  attempts: string[];
}

/** WebGPU buffer-usage flag values, fixed by the spec; usable before Dawn's globals exist. */
export const BufferUsage = {
  MAP_READ: 0x0001,
  COPY_SRC: 0x0004,
  COPY_DST: 0x0008,
  UNIFORM: 0x0040,
  STORAGE: 0x0080,
  QUERY_RESOLVE: 0x0200,
} as const;

const STORAGE_USAGE = BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST;
const UNIFORM_SLOT = 256;

export interface BufferBinding {
  buffer: PooledBuffer;
}

export class Runtime {
  readonly pool: BufferPool;
  /** Bind groups of eager dispatches, by layout and buffers (bind-groups.ts). */
  readonly bindGroups: BindGroupCache;
  readonly pipelines: PipelineCache;
  readonly profiler: Profiler | null;
  readonly features: Set<string>;
  /** What the adapter can do and what it is, read once (kernels and the tuning table use it). */
  readonly caps: AdapterCaps;
  readonly limits: GPUSupportedLimits;
  readonly maxDispatchesPerSubmit: number;
  readonly debug: boolean;
  /** Counts since init, for the dispatch-overhead benchmark and tests. */
  readonly counters = { dispatches: 0, submits: 0, readbacks: 0, uploads: 0 };
  readonly inFlight: InFlightTracker;
  /** Why the memory budget is what it is (explicit, software default, or none). */
  readonly memoryLimitSource: string;
  /** Autotuning on/off, retune, and the cache (read by src/kernels/tuning-store.ts). */
  readonly tuningSettings: { enabled: boolean; retune: boolean; store?: TuningCacheStore };

  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private dispatchesInBatch = 0;
  /** Commands and upload bytes recorded in the open batch (not yet submitted). */
  private commandsInBatch = 0;
  private uploadBytesInBatch = 0;
  private deviceOom: GpuOutOfMemoryError | null = null;
  private uniformCpu: Uint8Array;
  private uniformGpu: GPUBuffer;
  private uniformUsed = 0;
  private lostError: DeviceLostError | null = null;
  private pendingErrors: string[] = [];
  private destroyed = false;
  /** Set while a step is being recorded (see recorder.ts). */
  private recorder: Recorder | null = null;

  constructor(
    readonly gpu: GPU,
    readonly adapter: GPUAdapter,
    readonly device: GPUDevice,
    readonly adapterSummary: AdapterSummary,
    opts: InitOptions,
  ) {
    this.features = new Set(device.features);
    this.caps = readCaps(adapter.info, this.features);
    this.limits = device.limits;
    this.debug = opts.debug ?? false;
    this.tuningSettings = {
      enabled: (opts.tune ?? false) || (opts.retune ?? false),
      retune: opts.retune ?? false,
      store: opts.tuningCache,
    };
    this.maxDispatchesPerSubmit = opts.maxDispatchesPerSubmit ?? 128;
    const software = this.caps.software !== null;
    const budget = memoryBudget(opts.memoryLimit, software, opts.hostAvailableMemory);
    this.memoryLimitSource = budget.source;
    this.bindGroups = new BindGroupCache(device, Math.max(UNIFORM_SLOT, device.limits.minUniformBufferOffsetAlignment));
    this.pool = new BufferPool(device, Math.min(device.limits.maxBufferSize, device.limits.maxStorageBufferBindingSize), budget.limit, {
      flush: () => this.flush(),
      onDeviceOutOfMemory: (e) => {
        this.deviceOom ??= e;
      },
      onDestroy: (b) => this.bindGroups.forget(b),
    });
    this.inFlight = new InFlightTracker(
      device.queue,
      opts.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT,
      opts.maxInFlightUploadBytes ?? DEFAULT_MAX_IN_FLIGHT_UPLOAD_BYTES,
    );
    this.pipelines = new PipelineCache(device, { onKernelCompiled: opts.onKernelCompiled, checkKeys: this.debug });
    // A compiled step's replay submits all its dispatches at once: room for more than one eager batch.
    this.profiler =
      opts.profile && this.features.has('timestamp-query')
        ? new Profiler(device, Math.max(this.maxDispatchesPerSubmit, PROFILED_REPLAY_DISPATCHES))
        : null;
    const slot = Math.max(UNIFORM_SLOT, device.limits.minUniformBufferOffsetAlignment);
    this.uniformCpu = new Uint8Array(slot * this.maxDispatchesPerSubmit);
    this.uniformGpu = device.createBuffer({
      label: 'uniform-arena',
      size: this.uniformCpu.byteLength,
      usage: BufferUsage.UNIFORM | BufferUsage.COPY_DST,
    });
    device.lost.then((info) => {
      if (!this.destroyed) this.lostError = new DeviceLostError(info.reason, info.message);
    });
    device.addEventListener('uncapturederror', (ev) => {
      const err = (ev as GPUUncapturedErrorEvent).error;
      if (err.constructor?.name === 'GPUOutOfMemoryError') {
        // Out of memory outside buffer creation (a submit, a staging copy): the same error type.
        this.pool.trim();
        this.deviceOom ??= new GpuOutOfMemoryError(this.pool.report(0, `'${err.message}'`, 'device'));
        return;
      }
      const msg = err.message;
      const k = this.pipelines.sourceForMessage(msg);
      this.pendingErrors.push(k ? `kernel '${k.key}': ${msg}\nkernel '${k.key}' source:\n${numberedSource(k.source)}` : msg);
    });
  }

  get hasF16(): boolean {
    return this.caps.f16;
  }

  private checkAlive(op: string): void {
    if (this.destroyed) throw new GpuError('the GPU runtime was destroyed', op);
    if (this.lostError) throw this.lostError;
    if (this.deviceOom) {
      const e = this.deviceOom;
      this.deviceOom = null;
      throw e;
    }
  }

  /**
   * Refuses to record beyond the in-flight bound: synchronous code cannot wait for Dawn to
   * reclaim finished work, and without the bound the process would grow until it crashed.
   */
  private admit(op: string, uploadBytes = 0): void {
    const t = this.inFlight;
    const commands = t.commands + this.commandsInBatch;
    if (commands >= t.maxCommands) throw new InFlightLimitError(commands, t.maxCommands, `${commands} GPU commands are`, op);
    const bytes = t.bytes + this.uploadBytesInBatch;
    if (uploadBytes > 0 && bytes > 0 && bytes + uploadBytes > t.maxBytes) {
      throw new InFlightLimitError(bytes, t.maxBytes, `${bytes} bytes of uploads (and ${uploadBytes} more requested) are`, op);
    }
  }

  /**
   * The loop helper: returns at once while little work is in flight; otherwise submits the open
   * batch and waits — letting the event loop run, so Dawn reclaims finished work — until the
   * queue is down to a fraction of the bound. Await it once per iteration of any loop that
   * records GPU work without reading back.
   */
  async yieldIfBusy(): Promise<void> {
    this.checkAlive('yieldIfBusy');
    const t = this.inFlight;
    if (t.commands + this.commandsInBatch <= t.maxCommands / 4 && t.bytes + this.uploadBytesInBatch <= t.maxBytes / 4) return;
    this.flush();
    await t.drainTo(t.maxCommands / 8, t.maxBytes / 8);
    this.checkAlive('yieldIfBusy');
    this.throwPendingErrors('yieldIfBusy');
  }

  /** Throws any validation / out-of-memory error Dawn reported since the last check. */
  throwPendingErrors(op = 'gpu'): void {
    if (this.pendingErrors.length) {
      const errs = this.pendingErrors.splice(0);
      throw new GpuError(`WebGPU reported ${errs.length} error(s):\n${errs.join('\n')}`, op);
    }
  }

  allocate(bytes: number, label?: string): PooledBuffer {
    this.checkAlive(label ?? 'allocate');
    return this.pool.acquire(bytes, STORAGE_USAGE, label);
  }

  release(b: PooledBuffer): void {
    this.pool.release(b);
  }

  /**
   * Writes host data into a buffer, ordered after everything recorded so far. queue.writeBuffer
   * runs ahead of the open batch on the queue timeline, so while a batch is open the data goes
   * through a staging buffer and a copy recorded in the batch instead.
   */
  upload(b: PooledBuffer, data: ArrayBufferView, byteOffset = 0): void {
    this.checkAlive('upload');
    let bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    if (bytes.byteLength % 4 !== 0) {
      const padded = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
      padded.set(bytes);
      bytes = padded;
    }
    if (bytes.byteLength === 0) return;
    this.recorder?.refuse(
      `host data (${bytes.byteLength} bytes into ${b.label ?? 'a buffer'}) was uploaded inside the step: a replay would not upload it again; pass it as an input or create it outside the step`,
    );
    this.admit('upload', bytes.byteLength);
    this.counters.uploads++;
    if (!this.encoder) {
      this.device.queue.writeBuffer(b.buffer, byteOffset, bytes);
      // Dawn stages the bytes until the queue passes this point: count it as submitted work.
      this.inFlight.onSubmit(1, bytes.byteLength);
      return;
    }
    const staging = this.device.createBuffer({
      label: 'upload-staging',
      size: bytes.byteLength,
      usage: BufferUsage.COPY_SRC,
      mappedAtCreation: true,
    });
    new Uint8Array(staging.getMappedRange()).set(bytes);
    staging.unmap();
    this.endPass();
    this.encoder.copyBufferToBuffer(staging, 0, b.buffer, byteOffset, bytes.byteLength);
    this.stagingToDestroy.push(staging);
    this.commandsInBatch++;
    this.uploadBytesInBatch += bytes.byteLength;
  }
  private stagingToDestroy: GPUBuffer[] = [];

  /**
   * Records one compute dispatch. `params` goes to the last binding when the kernel declares a
   * uniform. Never waits for the GPU.
   */
  dispatch(
    src: KernelSource,
    buffers: PooledBuffer[],
    workgroups: [number, number?, number?],
    params?: ArrayBufferView,
    /** Words of `params` that change between replays of a recorded step (ignored otherwise). */
    dynamic?: readonly DynamicWord[],
  ): void {
    this.checkAlive(src.key);
    this.admit(src.key);
    const k = this.pipelines.get(src);
    const [x, y = 1, z = 1] = workgroups;
    const maxWg = this.limits.maxComputeWorkgroupsPerDimension;
    if (x > maxWg || y > maxWg || z > maxWg)
      throw new GpuError(`dispatch of [${x}, ${y}, ${z}] workgroups exceeds ${maxWg} per dimension`, src.key);
    if (x === 0 || y === 0 || z === 0) return;
    const hasUniform = src.bindings[src.bindings.length - 1] === 'uniform';
    if (buffers.length + (hasUniform ? 1 : 0) !== src.bindings.length)
      throw new GpuError(`kernel has ${src.bindings.length} bindings, got ${buffers.length + (hasUniform ? 1 : 0)}`, src.key);
    let offset = -1;
    if (hasUniform) {
      if (!params) throw new GpuError('kernel declares a uniform but no params were given', src.key);
      if (this.dispatchesInBatch >= this.maxDispatchesPerSubmit) this.flush();
      const slot = this.uniformCpu.byteLength / this.maxDispatchesPerSubmit;
      if (params.byteLength > slot) throw new GpuError(`params of ${params.byteLength} bytes exceed the ${slot}-byte slot`, src.key);
      offset = this.uniformUsed;
      this.uniformCpu.set(new Uint8Array(params.buffer, params.byteOffset, params.byteLength), offset);
      this.uniformUsed += slot;
    }
    const bindGroup = this.bindGroups.get(k.layout, buffers, hasUniform ? this.uniformGpu : null);
    if (this.debug) this.device.pushErrorScope('validation');
    const pass = this.computePass(src.key);
    pass.setPipeline(k.pipeline);
    if (offset >= 0) pass.setBindGroup(0, bindGroup, [offset]);
    else pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    if (this.profiler) this.endPass();
    this.dispatchesInBatch++;
    this.commandsInBatch++;
    this.counters.dispatches++;
    this.recorder?.dispatch(k, src, buffers, [x, y, z], params, dynamic);
    if (this.debug) {
      // Debug mode only: surface the error at the op that caused it.
      this.flush();
      void this.device.popErrorScope().then((e) => {
        if (e) this.pendingErrors.push(`${src.key}: ${e.message}\n${numberedSource(k.source)}`);
      });
    }
    if (this.dispatchesInBatch >= this.maxDispatchesPerSubmit) this.flush();
  }

  /** Copies bytes between buffers inside the open batch (ordered with dispatches). */
  copy(src: PooledBuffer, srcOffset: number, dst: PooledBuffer, dstOffset: number, bytes: number): void {
    this.checkAlive('copy');
    this.admit('copy');
    this.endPass();
    this.commandEncoder().copyBufferToBuffer(src.buffer, srcOffset, dst.buffer, dstOffset, bytes);
    this.commandsInBatch++;
    this.recorder?.copy(src, srcOffset, dst, dstOffset, bytes);
  }

  // ---- Recording a step and replaying it (recorder.ts; src/tensor/compile.ts drives it). ----

  /** Whether a step is being recorded now. */
  get recording(): boolean {
    return this.recorder !== null;
  }

  /** Starts recording: commands and buffer lifetimes from now on are captured. */
  beginRecording(): Recorder {
    if (this.recorder) throw new GpuError('a step is already being recorded (compiled steps do not nest)', 'compileStep');
    this.recorder = new Recorder();
    this.pool.observer = this.recorder;
    return this.recorder;
  }

  /** Stops recording; with `build`, returns the replay program (else discards the recording). */
  endRecording(build: true, fusion?: FusionPass): ReplayProgram;
  endRecording(build: false): null;
  endRecording(build: boolean, fusion?: FusionPass): ReplayProgram | null {
    const r = this.recorder;
    if (!r) throw new GpuError('no step is being recorded', 'compileStep');
    this.recorder = null;
    this.pool.observer = null;
    if (!build) return null;
    return r.finish(
      {
        device: this.device,
        kernel: (src) => this.pipelines.get(src),
        uniformSlot: this.uniformCpu.byteLength / this.maxDispatchesPerSubmit,
        allocate: (bytes, label) => this.allocate(bytes, label),
        release: (b) => this.release(b),
        pin: (buffers, onLost) => this.pool.pin(buffers, onLost),
        profiler: this.profiler,
        submitReplay: (encode) => {
          this.checkAlive('replay');
          this.flush();
          const t = this.inFlight;
          if (t.commands >= t.maxCommands)
            throw new InFlightLimitError(t.commands, t.maxCommands, `${t.commands} GPU commands are`, 'replay');
          const enc = this.device.createCommandEncoder({ label: 'compiled-step' });
          const n = encode(enc);
          this.profiler?.resolve(enc);
          this.device.queue.submit([enc.finish()]);
          this.profiler?.afterSubmit();
          this.inFlight.onSubmit(n, 0);
          this.counters.dispatches += n;
          this.counters.submits++;
        },
      },
      fusion,
    );
  }

  /** While recording: `fn` runs at each replay, before dynamic uniform words are read. */
  onReplay(fn: () => void): void {
    this.recorder?.onReplay(fn);
  }

  /** While recording: something the step did cannot be replayed; the recording will throw `what`. */
  refuseReplay(what: string): void {
    this.recorder?.refuse(what);
  }

  private commandEncoder(): GPUCommandEncoder {
    if (!this.encoder) this.encoder = this.device.createCommandEncoder({ label: 'batch' });
    return this.encoder;
  }

  private computePass(label: string): GPUComputePassEncoder {
    if (this.pass) return this.pass;
    const enc = this.commandEncoder();
    this.pass = enc.beginComputePass(this.profiler ? { label, timestampWrites: this.profiler.nextWrites(label) } : { label: 'batch' });
    return this.pass;
  }

  private endPass(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
  }

  /** Submits everything recorded so far. Cheap when nothing is pending. */
  flush(): void {
    this.checkAlive('flush');
    this.endPass();
    if (!this.encoder) {
      // Nothing recorded since the last submit: released buffers are already safe to reuse.
      this.pool.onSubmitted();
      return;
    }
    if (this.profiler) this.profiler.resolve(this.encoder);
    if (this.uniformUsed > 0) this.device.queue.writeBuffer(this.uniformGpu, 0, this.uniformCpu, 0, this.uniformUsed);
    this.device.queue.submit([this.encoder.finish()]);
    this.encoder = null;
    // Destroying after submit is safe: WebGPU frees the memory once the GPU is done with it.
    for (const s of this.stagingToDestroy.splice(0)) s.destroy();
    this.uniformUsed = 0;
    this.dispatchesInBatch = 0;
    this.inFlight.onSubmit(this.commandsInBatch, this.uploadBytesInBatch);
    this.commandsInBatch = 0;
    this.uploadBytesInBatch = 0;
    this.counters.submits++;
    this.pool.onSubmitted();
    if (this.profiler) this.profiler.afterSubmit();
  }

  /** Reads bytes back to the host: submits pending work, then awaits the mapping. */
  async read(b: PooledBuffer, byteOffset: number, bytes: number): Promise<ArrayBuffer> {
    this.checkAlive('read');
    if (this.recorder)
      throw new GpuError('a read-back inside a step being compiled: read outside the step (a replay cannot wait for the GPU)', 'read');
    const aligned = Math.ceil(bytes / 4) * 4;
    const start = byteOffset - (byteOffset % 4);
    const span = Math.ceil((byteOffset + aligned - start) / 4) * 4;
    const staging = this.pool.acquire(span, BufferUsage.MAP_READ | BufferUsage.COPY_DST, 'readback');
    this.endPass();
    // Not admitted against the in-flight bound: a read-back is how a loop drains the queue.
    this.commandEncoder().copyBufferToBuffer(b.buffer, start, staging.buffer, 0, span);
    this.commandsInBatch++;
    this.flush();
    const submitted = this.inFlight.snapshot();
    this.counters.readbacks++;
    try {
      await staging.buffer.mapAsync(GPUMapMode.READ, 0, span);
      this.inFlight.doneUpTo(submitted);
    } catch (e) {
      this.throwPendingErrors('read');
      if (this.lostError) throw this.lostError;
      throw new GpuError(`mapping the read-back buffer failed: ${(e as Error).message}`, 'read');
    }
    const out = staging.buffer.getMappedRange(0, span).slice(byteOffset - start, byteOffset - start + bytes);
    staging.buffer.unmap();
    this.pool.release(staging);
    this.throwPendingErrors('read');
    return out;
  }

  /** Waits until the GPU has finished everything submitted. */
  async sync(): Promise<void> {
    this.flush();
    await this.inFlight.waitAll();
    this.checkAlive('sync');
    this.throwPendingErrors('sync');
  }

  stats(): PoolStats & { pipelines: number; plannedBytes: number } {
    return { ...this.pool.stats(), pipelines: this.pipelines.size, plannedBytes: plannedBytes() };
  }

  /**
   * Tests only: loses the device the way a driver reset would (the runtime is not shut down),
   * and returns once the runtime has recorded the loss, so the next operation throws.
   */
  async loseDeviceForTest(): Promise<void> {
    this.device.destroy();
    await this.device.lost;
  }

  private readonly destroyHooks: (() => void)[] = [];
  /** Whether waits for the GPU poll quietly (InitOptions.quietWaits), set by init(). */
  quietWaits = false;
  /** Runs `fn` when the runtime is destroyed (undoing what init() set up for it). */
  onDestroy(fn: () => void): void {
    this.destroyHooks.push(fn);
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.inFlight.stop();
    this.pool.trim();
    this.device.destroy();
    for (const fn of this.destroyHooks.splice(0)) fn();
  }
}

let current: Runtime | null = null;
let pendingInit: Promise<Runtime> | null = null;

/** Finds an adapter, creates the device, and makes it the runtime every tensor uses. */
export async function init(options: InitOptions = {}): Promise<Runtime> {
  if (current) return current;
  if (pendingInit) return pendingInit;
  pendingInit = (async () => {
    const platform = options.platform ?? (await defaultPlatform());
    // Explicit options win over the platform's defaults (Node: RAE_* environment variables).
    const opts: InitOptions = { ...platform.defaults(), ...definedOnly(options) };
    const experimental = opts.experimental ?? false;
    const toggles = [...(opts.enableToggles ?? [])];
    if (experimental) toggles.push('allow_unsafe_apis', 'vulkan_enable_f16_on_nvidia');
    const found = await platform.discover({ ...opts, enableToggles: toggles });
    const { adapter } = found;
    const wanted = ['shader-f16', 'subgroups', 'timestamp-query'];
    if (experimental) wanted.push('chromium-experimental-subgroup-matrix');
    const requiredFeatures = wanted.filter((f) => adapter.features.has(f)) as GPUFeatureName[];
    const L = adapter.limits;
    const requiredLimits: Record<string, number> = {
      maxStorageBufferBindingSize: L.maxStorageBufferBindingSize,
      maxBufferSize: L.maxBufferSize,
      maxComputeWorkgroupStorageSize: L.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: L.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupSizeX: L.maxComputeWorkgroupSizeX,
      maxComputeWorkgroupSizeY: L.maxComputeWorkgroupSizeY,
      maxComputeWorkgroupSizeZ: L.maxComputeWorkgroupSizeZ,
      maxStorageBuffersPerShaderStage: L.maxStorageBuffersPerShaderStage,
      maxComputeWorkgroupsPerDimension: L.maxComputeWorkgroupsPerDimension,
    };
    const device = await adapter.requestDevice({ requiredFeatures, requiredLimits, label: 'rae-webgpu' });
    const info = adapter.info;
    const summary: AdapterSummary = {
      vendor: info.vendor,
      architecture: info.architecture,
      device: info.device,
      description: info.description,
      backend: (info as unknown as { backendType?: string }).backendType ?? found.backend,
      icd: found.icd,
      attempts: found.attempts,
    };
    current = new Runtime(found.gpu, adapter, device, summary, opts);
    if (platform.quietWaits && (opts.quietWaits ?? current.caps.software !== null)) {
      current.onDestroy(platform.quietWaits());
      current.quietWaits = true;
    }
    return current;
  })();
  try {
    return await pendingInit;
  } finally {
    pendingInit = null;
  }
}

async function defaultPlatform(): Promise<Platform> {
  const gpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  if (gpu) return browserPlatform(gpu);
  return (await import('./node.js')).nodePlatform;
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** The runtime made by init(); throws a clear error when init() was not awaited first. */
export function runtime(): Runtime {
  if (!current) throw new GpuError('the GPU runtime is not initialised: call `await init()` first');
  return current;
}

export function hasRuntime(): boolean {
  return current !== null;
}

/** Destroys the device so the process can exit; a later init() starts afresh. */
export function shutdown(): void {
  current?.destroy();
  current = null;
}
