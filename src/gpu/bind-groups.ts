/**
 * The eager bind-group cache. Creating a bind group is a large share of an eager dispatch's host
 * time, and a training loop binds the same buffers to the same kernels step after step (the pool
 * hands buffers out in the same order). Bind groups are keyed by the layout and the buffers; the
 * uniform is bound at a dynamic offset (pipeline-cache.ts), so one bind group serves every slot of
 * the uniform arena. A bind group is forgotten when the pool destroys one of its buffers.
 */
import type { PooledBuffer } from './buffer-pool.js';

/** Entries kept before the cache starts over (a bind group is small; this bounds a leak by churn). */
const MAX_ENTRIES = 8192;

export class BindGroupCache {
  private readonly groups = new Map<string, GPUBindGroup>();
  /** Keys naming each buffer, for forget(). */
  private readonly byBuffer = new Map<PooledBuffer, string[]>();
  private readonly ids = new WeakMap<object, number>();
  private nextId = 1;
  hits = 0;
  misses = 0;
  /** Off: every dispatch creates its bind group (for measuring the cache). */
  enabled = true;

  constructor(
    private readonly device: GPUDevice,
    private readonly uniformSize: number,
  ) {}

  private id(o: object): number {
    let i = this.ids.get(o);
    if (i === undefined) this.ids.set(o, (i = this.nextId++));
    return i;
  }

  /** The bind group of `buffers` (bindings 0…) and, when given, the uniform arena (last binding). */
  get(layout: GPUBindGroupLayout, buffers: PooledBuffer[], uniform: GPUBuffer | null): GPUBindGroup {
    let key = `${this.id(layout)}`;
    for (const b of buffers) key += `,${this.id(b)}`;
    if (uniform) key += `|u${this.id(uniform)}`;
    const hit = this.enabled ? this.groups.get(key) : undefined;
    if (hit) {
      this.hits++;
      return hit;
    }
    this.misses++;
    const entries: GPUBindGroupEntry[] = buffers.map((b, i) => ({ binding: i, resource: { buffer: b.buffer } }));
    if (uniform) entries.push({ binding: buffers.length, resource: { buffer: uniform, offset: 0, size: this.uniformSize } });
    const group = this.device.createBindGroup({ layout, entries });
    if (!this.enabled) return group;
    if (this.groups.size >= MAX_ENTRIES) this.clear();
    this.groups.set(key, group);
    for (const b of new Set(buffers)) {
      const keys = this.byBuffer.get(b);
      if (keys) keys.push(key);
      else this.byBuffer.set(b, [key]);
    }
    return group;
  }

  /** Drops the bind groups that name `b` (the pool is destroying it). */
  forget(b: PooledBuffer): void {
    const keys = this.byBuffer.get(b);
    if (!keys) return;
    this.byBuffer.delete(b);
    for (const k of keys) this.groups.delete(k);
  }

  clear(): void {
    this.groups.clear();
    this.byBuffer.clear();
  }

  get size(): number {
    return this.groups.size;
  }
}
