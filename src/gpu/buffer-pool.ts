/**
 * GPU buffers from size buckets. A released buffer may still be read by commands recorded in
 * the open batch, and queue.writeBuffer runs ahead of that batch on the queue timeline, so a
 * released buffer becomes reusable only once the batch that last used it has been submitted.
 */

/** Bucket sizes: 256 B minimum, then quarter steps between powers of two (≤ 25 % waste). */
export function bucketSize(bytes: number): number {
  if (bytes <= 256) return 256;
  const p = 2 ** Math.floor(Math.log2(bytes));
  if (p === bytes) return p;
  for (const f of [1.25, 1.5, 1.75, 2]) if (p * f >= bytes) return p * f;
  return 2 * p;
}

export interface PooledBuffer {
  readonly buffer: GPUBuffer;
  readonly size: number;
  readonly usage: number;
}

export interface PoolStats {
  liveBuffers: number;
  liveBytes: number;
  pooledBuffers: number;
  pooledBytes: number;
  /** Buffers ever created (a measure of how well the pool reuses). */
  created: number;
}

export class BufferPool {
  private free = new Map<string, PooledBuffer[]>();
  private pending: PooledBuffer[] = [];
  private live = new Set<PooledBuffer>();
  private liveBytes = 0;
  private pooledBytes = 0;
  private pooledCount = 0;
  private created = 0;

  constructor(
    private device: GPUDevice,
    private maxBufferSize: number,
  ) {}

  acquire(bytes: number, usage: number, label?: string): PooledBuffer {
    if (!Number.isFinite(bytes) || bytes < 0) throw new RangeError(`buffer size must be a non-negative number, got ${bytes}`);
    const size = bucketSize(Math.max(bytes, 4));
    if (size > this.maxBufferSize && bytes <= this.maxBufferSize) return this.take(Math.ceil(bytes / 4) * 4, usage, label);
    if (bytes > this.maxBufferSize) {
      throw new RangeError(`${label ?? 'buffer'}: ${bytes} bytes exceeds the adapter's maxBufferSize ${this.maxBufferSize}`);
    }
    return this.take(size, usage, label);
  }

  private take(size: number, usage: number, label?: string): PooledBuffer {
    const list = this.free.get(`${usage}:${size}`);
    let b = list?.pop();
    if (b) {
      this.pooledBytes -= size;
      this.pooledCount--;
    } else {
      b = { buffer: this.device.createBuffer({ size, usage, label }), size, usage };
      this.created++;
    }
    this.live.add(b);
    this.liveBytes += size;
    return b;
  }

  /** Give a buffer back; it is reused after the current batch is submitted. */
  release(b: PooledBuffer): void {
    if (!this.live.delete(b)) throw new Error('buffer released twice (internal error)');
    this.liveBytes -= b.size;
    this.pending.push(b);
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

  /** Destroy every pooled (not live) buffer, e.g. between phases with different shapes. */
  trim(): void {
    for (const list of this.free.values()) for (const b of list) b.buffer.destroy();
    this.free.clear();
    this.pooledBytes = 0;
    this.pooledCount = 0;
  }

  stats(): PoolStats {
    return {
      liveBuffers: this.live.size,
      liveBytes: this.liveBytes,
      pooledBuffers: this.pooledCount + this.pending.length,
      pooledBytes: this.pooledBytes + this.pending.reduce((s, b) => s + b.size, 0),
      created: this.created,
    };
  }
}
