/**
 * Tensor: a typed, shaped, strided view of a pooled GPU buffer. Storage is reference counted so
 * that views share it; `dispose()` and `scope()` return buffers to the pool deterministically,
 * and a FinalizationRegistry is only a safety net for tensors that were dropped.
 */
import type { PooledBuffer } from '../gpu/buffer-pool.js';
import { runtime } from '../gpu/runtime.js';
import type { View } from '../kernels/view.js';
import { isContiguous } from '../kernels/view.js';
import { byteSize, type DType } from './dtype.js';
import { contiguousStrides, sizeOf, type Shape } from './shape.js';

/** A GPU allocation shared by a tensor and its views. */
export class Storage {
  refs = 1;
  constructor(
    readonly buffer: PooledBuffer,
    readonly byteLength: number,
  ) {}
  retain(): void {
    this.refs++;
  }
  release(): void {
    if (--this.refs === 0) runtime().release(this.buffer);
  }
}

/** Backward node of the tape (src/autograd): how to turn the output's gradient into inputs' gradients. */
export interface GradNode {
  readonly op: string;
  readonly inputs: readonly (Tensor | null)[];
  /** Input gradients (Tensors, or windowed gradients defined by the tape). */
  backward(grad: Tensor): unknown[];
  /** Frees what the node saved for backward. */
  release(): void;
  released: boolean;
}

const finalizer = new FinalizationRegistry<Storage>((s) => {
  try {
    s.release();
    liveTensors--;
  } catch {
    // The runtime may be gone at process exit; nothing to return buffers to.
  }
});

let liveTensors = 0;
let nextId = 1;

/** Scopes track the tensors created inside them (see scope.ts). */
export const scopeStack: Set<Tensor>[] = [];

export class Tensor implements View {
  readonly id = nextId++;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly offset: number;
  readonly dtype: DType;
  private _storage: Storage | null;
  /** Set by the tape when this tensor was produced by a differentiable op. */
  gradFn: GradNode | null = null;
  private _requiresGrad = false;
  /** Accumulated gradient after backward(); kept across scopes. */
  grad: Tensor | null = null;
  /** Debug name (parameters get their state-dict key). */
  name?: string;

  constructor(storage: Storage, shape: Shape, dtype: DType, strides?: readonly number[], offset = 0) {
    this._storage = storage;
    this.shape = Object.freeze([...shape]);
    this.strides = Object.freeze(strides ? [...strides] : contiguousStrides(shape));
    this.offset = offset;
    this.dtype = dtype;
    liveTensors++;
    finalizer.register(this, storage, this);
    scopeStack[scopeStack.length - 1]?.add(this);
  }

  get requiresGrad(): boolean {
    return this._requiresGrad;
  }
  set requiresGrad(v: boolean) {
    if (v && this.dtype !== 'f32' && this.dtype !== 'f16') throw new TypeError(`requiresGrad: only floating tensors can require gradients, this one is ${this.dtype}`);
    this._requiresGrad = v;
  }

  get storage(): Storage {
    if (!this._storage) throw new Error(`tensor #${this.id}${this.name ? ` (${this.name})` : ''} of shape [${this.shape.join(', ')}] was disposed and cannot be used`);
    return this._storage;
  }
  get buffer(): PooledBuffer {
    return this.storage.buffer;
  }
  get isDisposed(): boolean {
    return this._storage === null;
  }
  get rank(): number {
    return this.shape.length;
  }
  get ndim(): number {
    return this.shape.length;
  }
  get size(): number {
    return sizeOf(this.shape);
  }
  get numel(): number {
    return sizeOf(this.shape);
  }
  get isContiguous(): boolean {
    return isContiguous(this);
  }

  /** Returns the storage to the pool (once no view uses it). Idempotent. */
  dispose(): void {
    if (!this._storage) return;
    const s = this._storage;
    this._storage = null;
    finalizer.unregister(this);
    liveTensors--;
    for (const sc of scopeStack) sc.delete(this);
    s.release();
  }

  /** Removes the tensor from the enclosing scopes so it outlives them. */
  keep(): this {
    for (const sc of scopeStack) sc.delete(this);
    return this;
  }

  toString(): string {
    return `Tensor(#${this.id}, ${this.dtype}, [${this.shape.join(', ')}]${this.requiresGrad ? ', requiresGrad' : ''})`;
  }
}

/** Allocates an uninitialised contiguous tensor. */
export function empty(shape: Shape, dtype: DType = 'f32', label?: string): Tensor {
  const bytes = sizeOf(shape) * byteSize(dtype);
  // The label names the tensor in out-of-memory reports.
  const buf = runtime().allocate(bytes, label ?? `tensor ${dtype} [${shape.join(', ')}]`);
  return new Tensor(new Storage(buf, bytes), shape, dtype);
}

/** A view sharing `base`'s storage with new shape/strides/offset. */
export function viewOf(base: Tensor, shape: Shape, strides: readonly number[], offset: number): Tensor {
  const s = base.storage;
  s.retain();
  return new Tensor(s, shape, base.dtype, strides, offset);
}

export function liveTensorCount(): number {
  return liveTensors;
}
