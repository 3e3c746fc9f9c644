/**
 * GPU buffers from size buckets. A released buffer may still be read by commands recorded in
 * the open batch, and queue.writeBuffer runs ahead of that batch on the queue timeline, so a
 * released buffer becomes reusable only once the batch that last used it has been submitted.
 *
 * The pool also keeps the memory budget: live + cached buffers never exceed `limit`. When a new
 * buffer would not fit, the cached free buffers are released and the allocation retried once
 * before a GpuOutOfMemoryError names the request, the live bytes and the largest live buffers.
 */
import { GpuOutOfMemoryError, type LiveAllocation } from './errors.js';

/** Bucket sizes: 256 B minimum, then quarter steps between powers of two (≤ 25 % waste). */
export function bucketSize(bytes: number): number {
  if (bytes <= 256) return 256;
  const p = 2 ** Math.floor(Math.log2(bytes));
  if (p === bytes) return p;
  for (const f of [1.25, 1.5, 1.75, 2]) if (p * f >= bytes) return p * f;
  return 2 * p;
}

/**
 * Parses a memory size: a number of bytes, or a number with a binary unit ('512MiB', '8G',
 * '1.5 GiB'); 'none' means no budget. Throws a RangeError naming the bad value.
 */
export function parseByteSize(text: string, what = 'memory size'): number {
  const t = text.trim();
  if (/^(none|off|unlimited|infinity)$/i.test(t)) return Number.POSITIVE_INFINITY;
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?$/i.exec(t);
  if (!m || (m[3] && !m[2] && m[3].toLowerCase() !== 'b'))
    throw new RangeError(`${what}: cannot read '${text}' as a size (examples: 2147483648, 512MiB, 8G, none)`);
  const scale = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[m[2].toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  const bytes = Math.floor(Number(m[1]) * scale);
  if (!(bytes > 0)) throw new RangeError(`${what}: must be positive, got '${text}'`);
  return bytes;
}

/** Share of the host's available memory a software adapter may use (its buffers live there). */
export const SOFTWARE_MEMORY_FRACTION = 0.5;

/**
 * The memory budget: an explicit limit wins; a software adapter (lavapipe, SwiftShader) gets a
 * share of the host memory available at start; a GPU gets none, because Dawn's Node binding does
 * not report adapter memory (no memory-heap information) — the device's own out-of-memory errors
 * are the only guard there.
 */
export function memoryBudget(
  explicit: number | undefined,
  software: boolean,
  hostAvailableBytes: number | undefined,
): { limit: number; source: string } {
  if (explicit !== undefined) {
    if (!(explicit > 0)) throw new RangeError(`memoryLimit must be a positive number of bytes, got ${explicit}`);
    return { limit: explicit, source: 'set by memoryLimit / RAE_MEMORY_LIMIT' };
  }
  if (software && hostAvailableBytes && hostAvailableBytes > 0) {
    return {
      limit: Math.floor(hostAvailableBytes * SOFTWARE_MEMORY_FRACTION),
      source: `software adapter: ${SOFTWARE_MEMORY_FRACTION * 100} % of the host memory available at start`,
    };
  }
  return {
    limit: Number.POSITIVE_INFINITY,
    source: software
      ? 'none (host memory unknown)'
      : "none: Dawn's Node binding does not report the adapter's memory; the device's out-of-memory errors still apply",
  };
}

export interface PooledBuffer {
  readonly buffer: GPUBuffer;
  readonly size: number;
  readonly usage: number;
  /** What holds it now (for out-of-memory reports); set on every acquire. */
  label?: string;
}

export interface PoolStats {
  liveBuffers: number;
  liveBytes: number;
  pooledBuffers: number;
  pooledBytes: number;
  /** Buffers ever created (a measure of how well the pool reuses). */
  created: number;
  /** The memory budget in bytes (Infinity when none). */
  limit: number;
}

/** Hooks the runtime gives the pool: make pending buffers reusable, hear of device OOM. */
export interface PoolHooks {
  /** Submits the open batch so buffers released in it become free (and can be destroyed). */
  flush?: () => void;
  /** The device refused a buffer the pool created (reported asynchronously by Dawn). */
  onDeviceOutOfMemory?: (err: GpuOutOfMemoryError) => void;
  /** A buffer is about to be destroyed (bind groups that name it must go). */
  onDestroy?: (b: PooledBuffer) => void;
}

/** Told of every buffer handed out and taken back (the step recorder attaches one). */
export interface PoolObserver {
  acquired(b: PooledBuffer): void;
  released(b: PooledBuffer): void;
}

export class BufferPool {
  /** Set while a step is being recorded. */
  observer: PoolObserver | null = null;
  /** Buffers a compiled step binds, with what to do when one is released or destroyed. */
  private pinned = new Map<PooledBuffer, Set<(b: PooledBuffer) => void>>();
  private free = new Map<string, PooledBuffer[]>();
  private pending: PooledBuffer[] = [];
  private live = new Set<PooledBuffer>();
  private liveBytes = 0;
  private pooledBytes = 0;
  private pooledCount = 0;
  private created = 0;
  /** Buffers the device failed to create: never pooled again. */
  private broken = new WeakSet<PooledBuffer>();

  constructor(
    private device: GPUDevice,
    private maxBufferSize: number,
    /** Bytes the pool may hold, live and cached together. */
    readonly limit = Number.POSITIVE_INFINITY,
    private hooks: PoolHooks = {},
  ) {}

  acquire(bytes: number, usage: number, label?: string): PooledBuffer {
    if (!Number.isFinite(bytes) || bytes < 0) throw new RangeError(`buffer size must be a non-negative number, got ${bytes}`);
    const size = bucketSize(Math.max(bytes, 4));
    if (size > this.maxBufferSize && bytes <= this.maxBufferSize) return this.take(Math.ceil(bytes / 4) * 4, usage, label, bytes);
    if (bytes > this.maxBufferSize) {
      throw new RangeError(`${label ?? 'buffer'}: ${bytes} bytes exceeds the adapter's maxBufferSize ${this.maxBufferSize}`);
    }
    return this.take(size, usage, label, bytes);
  }

  private take(size: number, usage: number, label?: string, requested = size): PooledBuffer {
    const list = this.free.get(`${usage}:${size}`);
    let b = list?.pop();
    if (b) {
      this.pooledBytes -= size;
      this.pooledCount--;
    } else {
      this.makeRoom(size, requested, label);
      b = this.create(size, usage, label, requested);
    }
    b.label = label;
    this.live.add(b);
    this.liveBytes += size;
    this.observer?.acquired(b);
    return b;
  }

  private held(): number {
    return this.liveBytes + this.pooledBytes + this.pendingBytes();
  }

  private pendingBytes(): number {
    let n = 0;
    for (const b of this.pending) n += b.size;
    return n;
  }

  /** Releases cached buffers when a new one would exceed the budget; throws if that is not enough. */
  private makeRoom(size: number, requested: number, label?: string): void {
    if (this.held() + size <= this.limit) return;
    // Buffers released in the open batch may still be used by it: submit it so they can go too.
    if (this.pending.length) this.hooks.flush?.();
    this.trim();
    if (this.held() + size <= this.limit) return;
    throw new GpuOutOfMemoryError(this.report(requested, label, 'budget'));
  }

  private create(size: number, usage: number, label: string | undefined, requested: number): PooledBuffer {
    // Dawn reports a refused allocation asynchronously, through an error scope.
    this.device.pushErrorScope('out-of-memory');
    const b: PooledBuffer = { buffer: this.device.createBuffer({ size, usage, label }), size, usage };
    this.device.popErrorScope().then(
      (e) => {
        if (!e) return;
        this.broken.add(b);
        this.trim();
        this.hooks.onDeviceOutOfMemory?.(new GpuOutOfMemoryError(this.report(requested, label, 'device')));
      },
      () => {}, // device lost: the runtime reports that
    );
    this.created++;
    return b;
  }

  /** The request and the state of the pool, for an out-of-memory error. */
  report(requestedBytes: number, label: string | undefined, source: 'budget' | 'device') {
    const groups = new Map<string, LiveAllocation>();
    for (const b of this.live) {
      const label = b.label ?? 'unlabelled';
      const key = `${b.size}:${label}`;
      const g = groups.get(key);
      if (g) g.count++;
      else groups.set(key, { label, bytes: b.size, count: 1 });
    }
    const largest = [...groups.values()].sort((a, b) => b.bytes * b.count - a.bytes * a.count).slice(0, 5);
    return {
      requestedBytes,
      label,
      limit: this.limit,
      liveBytes: this.liveBytes,
      liveBuffers: this.live.size,
      cachedBytes: this.pooledBytes + this.pendingBytes(),
      largest,
      source,
    };
  }

  /** Give a buffer back; it is reused after the current batch is submitted. */
  release(b: PooledBuffer): void {
    if (!this.live.delete(b)) throw new Error('buffer released twice (internal error)');
    this.liveBytes -= b.size;
    this.observer?.released(b);
    this.lose(b);
    // A buffer the device refused is dropped, never handed out again.
    if (!this.broken.has(b)) this.pending.push(b);
    else this.hooks.onDestroy?.(b);
  }

  /** Called by the batcher right after queue.submit(). */
  onSubmitted(): void {
    for (const b of this.pending) {
      const key = `${b.usage}:${b.size}`;
      let list = this.free.get(key);
      if (!list) this.free.set(key, (list = []));
      list.push(b);
      this.pooledBytes += b.size;
      this.pooledCount++;
    }
    this.pending.length = 0;
  }

  /**
   * Pins buffers: `onLost` runs if one is released (or destroyed) while pinned, so that a
   * compiled step refuses to replay instead of writing into storage someone else now owns.
   * Returns the unpin function.
   */
  pin(buffers: Iterable<PooledBuffer>, onLost: (b: PooledBuffer) => void): () => void {
    const list = [...buffers];
    for (const b of list) {
      let s = this.pinned.get(b);
      if (!s) this.pinned.set(b, (s = new Set()));
      s.add(onLost);
    }
    return () => {
      for (const b of list) {
        const s = this.pinned.get(b);
        s?.delete(onLost);
        if (s?.size === 0) this.pinned.delete(b);
      }
    };
  }

  private lose(b: PooledBuffer): void {
    const s = this.pinned.get(b);
    if (!s) return;
    this.pinned.delete(b);
    for (const f of s) f(b);
  }

  /** Destroy every pooled (not live) buffer, e.g. between phases with different shapes. */
  trim(): void {
    for (const list of this.free.values())
      for (const b of list) {
        this.hooks.onDestroy?.(b);
        b.buffer.destroy();
      }
    this.free.clear();
    this.pooledBytes = 0;
    this.pooledCount = 0;
  }

  stats(): PoolStats {
    return {
      liveBuffers: this.live.size,
      liveBytes: this.liveBytes,
      pooledBuffers: this.pooledCount + this.pending.length,
      pooledBytes: this.pooledBytes + this.pendingBytes(),
      created: this.created,
      limit: this.limit,
    };
  }
}
