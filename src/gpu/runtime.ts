/**
 * The GPU runtime: one device, its buffer pool, pipeline cache, command batching and read-back.
 * This is the narrow waist between tensors and WebGPU: allocate / release / upload / dispatch /
 * copy / read. Nothing above src/gpu touches GPUDevice.
 */
import { BufferPool, type PooledBuffer, type PoolStats } from './buffer-pool.js';
import { readCaps, type AdapterCaps } from './caps.js';
import { discoverAdapter, type DiscoveryOptions } from './discovery.js';
import { DeviceLostError, GpuError } from './errors.js';
import { kernelHooksFromEnv } from './kernel-dump.js';
import { numberedSource, PipelineCache, type KernelCompiledHook, type KernelSource } from './pipeline-cache.js';
import { Profiler } from './profiler.js';

export interface InitOptions extends DiscoveryOptions {
  /** Opt in to experimental features: subgroup matrices, f16 on NVIDIA (needs unsafe toggles). */
  experimental?: boolean;
  /** Dispatches recorded before an automatic submit. */
  maxDispatchesPerSubmit?: number;
  /** Check every dispatch for validation errors synchronously (slow; for debugging). Env RAE_DEBUG=1. */
  debug?: boolean;
  /** Record per-dispatch GPU time with timestamp queries when the adapter has them. */
  profile?: boolean;
  /** Called with each kernel's cache key and WGSL when it compiles (env RAE_DUMP_WGSL / RAE_LOG_COMPILES install one). */
  onKernelCompiled?: KernelCompiledHook;
}

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

  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private dispatchesInBatch = 0;
  private uniformCpu: Uint8Array;
  private uniformGpu: GPUBuffer;
  private uniformUsed = 0;
  private lostError: DeviceLostError | null = null;
  private pendingErrors: string[] = [];
  private destroyed = false;

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
    this.debug = opts.debug ?? process.env.RAE_DEBUG === '1';
    this.maxDispatchesPerSubmit = opts.maxDispatchesPerSubmit ?? 128;
    this.pool = new BufferPool(device, Math.min(device.limits.maxBufferSize, device.limits.maxStorageBufferBindingSize));
    this.pipelines = new PipelineCache(device, { onKernelCompiled: opts.onKernelCompiled, checkKeys: this.debug });
    this.profiler = opts.profile && this.features.has('timestamp-query') ? new Profiler(device, this.maxDispatchesPerSubmit) : null;
    const slot = Math.max(UNIFORM_SLOT, device.limits.minUniformBufferOffsetAlignment);
    this.uniformCpu = new Uint8Array(slot * this.maxDispatchesPerSubmit);
    this.uniformGpu = device.createBuffer({ label: 'uniform-arena', size: this.uniformCpu.byteLength, usage: BufferUsage.UNIFORM | BufferUsage.COPY_DST });
    device.lost.then((info) => {
      if (!this.destroyed) this.lostError = new DeviceLostError(info.reason, info.message);
    });
    device.addEventListener('uncapturederror', (ev) => {
      const msg = (ev as GPUUncapturedErrorEvent).error.message;
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
    this.counters.uploads++;
    if (!this.encoder) {
      this.device.queue.writeBuffer(b.buffer, byteOffset, bytes);
      return;
    }
    const staging = this.device.createBuffer({ label: 'upload-staging', size: bytes.byteLength, usage: BufferUsage.COPY_SRC, mappedAtCreation: true });
    new Uint8Array(staging.getMappedRange()).set(bytes);
    staging.unmap();
    this.endPass();
    this.encoder.copyBufferToBuffer(staging, 0, b.buffer, byteOffset, bytes.byteLength);
    this.stagingToDestroy.push(staging);
  }
  private stagingToDestroy: GPUBuffer[] = [];

  /**
   * Records one compute dispatch. `params` goes to the last binding when the kernel declares a
   * uniform. Never waits for the GPU.
   */
  dispatch(src: KernelSource, buffers: PooledBuffer[], workgroups: [number, number?, number?], params?: ArrayBufferView): void {
    this.checkAlive(src.key);
    const k = this.pipelines.get(src);
    const [x, y = 1, z = 1] = workgroups;
    const maxWg = this.limits.maxComputeWorkgroupsPerDimension;
    if (x > maxWg || y > maxWg || z > maxWg) throw new GpuError(`dispatch of [${x}, ${y}, ${z}] workgroups exceeds ${maxWg} per dimension`, src.key);
    if (x === 0 || y === 0 || z === 0) return;
    const entries: GPUBindGroupEntry[] = buffers.map((b, i) => ({ binding: i, resource: { buffer: b.buffer } }));
    if (src.bindings[src.bindings.length - 1] === 'uniform') {
      if (!params) throw new GpuError('kernel declares a uniform but no params were given', src.key);
      if (this.dispatchesInBatch >= this.maxDispatchesPerSubmit) this.flush();
      const slot = this.uniformCpu.byteLength / this.maxDispatchesPerSubmit;
      if (params.byteLength > slot) throw new GpuError(`params of ${params.byteLength} bytes exceed the ${slot}-byte slot`, src.key);
      const offset = this.uniformUsed;
      this.uniformCpu.set(new Uint8Array(params.buffer, params.byteOffset, params.byteLength), offset);
      this.uniformUsed += slot;
      entries.push({ binding: buffers.length, resource: { buffer: this.uniformGpu, offset, size: slot } });
    }
    if (entries.length !== src.bindings.length) throw new GpuError(`kernel has ${src.bindings.length} bindings, got ${entries.length}`, src.key);
    const bindGroup = this.device.createBindGroup({ label: src.key, layout: k.layout, entries });
    if (this.debug) this.device.pushErrorScope('validation');
    const pass = this.computePass(src.key);
    pass.setPipeline(k.pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    if (this.profiler) this.endPass();
    this.dispatchesInBatch++;
    this.counters.dispatches++;
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
    this.endPass();
    this.commandEncoder().copyBufferToBuffer(src.buffer, srcOffset, dst.buffer, dstOffset, bytes);
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
    this.counters.submits++;
    this.pool.onSubmitted();
    if (this.profiler) this.profiler.afterSubmit();
  }

  /** Reads bytes back to the host: submits pending work, then awaits the mapping. */
  async read(b: PooledBuffer, byteOffset: number, bytes: number): Promise<ArrayBuffer> {
    this.checkAlive('read');
    const aligned = Math.ceil(bytes / 4) * 4;
    const start = byteOffset - (byteOffset % 4);
    const span = Math.ceil((byteOffset + aligned - start) / 4) * 4;
    const staging = this.pool.acquire(span, BufferUsage.MAP_READ | BufferUsage.COPY_DST, 'readback');
    this.endPass();
    this.commandEncoder().copyBufferToBuffer(b.buffer, start, staging.buffer, 0, span);
    this.flush();
    this.counters.readbacks++;
    try {
      await staging.buffer.mapAsync(GPUMapMode.READ, 0, span);
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
    await this.device.queue.onSubmittedWorkDone();
    this.throwPendingErrors('sync');
  }

  stats(): PoolStats & { pipelines: number } {
    return { ...this.pool.stats(), pipelines: this.pipelines.size };
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.pool.trim();
    this.device.destroy();
  }
}

let current: Runtime | null = null;
let pendingInit: Promise<Runtime> | null = null;

/** Finds an adapter, creates the device, and makes it the runtime every tensor uses. */
export async function init(opts: InitOptions = {}): Promise<Runtime> {
  if (current) return current;
  if (pendingInit) return pendingInit;
  pendingInit = (async () => {
    const experimental = opts.experimental ?? process.env.RAE_EXPERIMENTAL === '1';
    const toggles = [...(opts.enableToggles ?? [])];
    if (experimental) toggles.push('allow_unsafe_apis', 'vulkan_enable_f16_on_nvidia');
    const found = await discoverAdapter({ ...opts, enableToggles: toggles });
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
      backend: (info as unknown as { backendType?: string }).backendType ?? (process.platform === 'darwin' ? 'metal' : process.platform === 'win32' ? 'd3d12' : 'vulkan'),
      icd: found.icd,
      attempts: found.attempts,
    };
    current = new Runtime(found.gpu, adapter, device, summary, { ...opts, onKernelCompiled: opts.onKernelCompiled ?? kernelHooksFromEnv() });
    return current;
  })();
  try {
    return await pendingInit;
  } finally {
    pendingInit = null;
  }
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
