/**
 * Tensor: a typed, shaped, strided view of a pooled GPU buffer. Storage is reference counted so
 * that views share it; `dispose()` and `scope()` return buffers to the pool deterministically,
 * and a FinalizationRegistry is only a safety net for tensors that were dropped.
 */
import type { PooledBuffer } from '../gpu/buffer-pool.js';
import { runtime } from '../gpu/runtime.js';
import { byteSize, type DType } from '../core/dtype.js';
import { UNARY_METHODS, type UnaryMethod, type UnaryOp } from '../core/pointwise.js';
import { contiguousStrides, sizeOf, type Dims, type ReduceOptions, type Shape } from '../core/shape.js';
import { isContiguous, type View } from '../kernels/view.js';

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

/**
 * Whether the FinalizationRegistry returns the storage of tensors dropped without dispose().
 * Leak tests switch it off: a dropped tensor then stays counted in memoryStats() (and its buffer
 * is never reused), so a leak shows up deterministically instead of whenever the GC runs.
 */
let gcSafetyNet = true;

/** Switches the garbage-collector safety net on or off (on by default); returns the previous setting. */
export function setGcSafetyNet(enabled: boolean): boolean {
  const prev = gcSafetyNet;
  gcSafetyNet = enabled;
  return prev;
}

const finalizer = new FinalizationRegistry<Storage>((s) => {
  if (!gcSafetyNet) return;
  try {
    s.release();
    liveTensors--;
  } catch {
    // The runtime may be gone at process exit; nothing to return buffers to.
  }
});

let liveTensors = 0;
let nextId = 1;

/** A tensor or a number (numbers travel to kernels as uniforms, not as tensors). */
export type Scalarish = Tensor | number;
export type CompareOp = 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge';
export type ShapeArgs = number[] | [readonly number[]];

export interface BackwardOptions {
  /** Keep saved tensors so backward can run through the graph again. */
  retainGraph?: boolean;
}

/**
 * The operations behind Tensor's methods. They live above this layer (src/autograd records them
 * on the tape), so the autograd layer hands them over once, when src/autograd/ops is loaded
 * (every entry that gives tensors ops does so: the package root, src/autograd/ops, nn, F).
 */
export interface TensorOps {
  unary(op: UnaryOp, x: Tensor): Tensor;
  binary(op: 'add' | 'sub' | 'mul' | 'div' | 'maximum' | 'minimum', a: Tensor, b: Scalarish): Tensor;
  compare(op: CompareOp, a: Tensor, b: Scalarish): Tensor;
  pow(x: Tensor, p: number): Tensor;
  clamp(x: Tensor, min?: number, max?: number): Tensor;
  gelu(x: Tensor, approximate: 'none' | 'tanh'): Tensor;
  matmul(a: Tensor, b: Tensor): Tensor;
  reduce(op: 'sum' | 'mean' | 'max' | 'min', x: Tensor, dims?: Dims, opts?: ReduceOptions): Tensor;
  variance(x: Tensor, dims?: Dims, opts?: ReduceOptions & { correction?: number }): Tensor;
  argReduce(op: 'argmax' | 'argmin', x: Tensor, dim?: number, opts?: ReduceOptions): Tensor;
  softmax(x: Tensor, dim: number, log: boolean): Tensor;
  reshape(x: Tensor, shape: readonly number[], view: boolean): Tensor;
  flatten(x: Tensor, startDim?: number, endDim?: number): Tensor;
  permute(x: Tensor, dims: readonly number[]): Tensor;
  transpose(x: Tensor, d0?: number, d1?: number): Tensor;
  unsqueeze(x: Tensor, dim: number): Tensor;
  squeeze(x: Tensor, dim?: number): Tensor;
  narrow(x: Tensor, dim: number, start: number, length: number): Tensor;
  slice(x: Tensor, dim: number, start?: number, end?: number): Tensor;
  expand(x: Tensor, shape: readonly number[]): Tensor;
  contiguous(x: Tensor): Tensor;
  detach(x: Tensor): Tensor;
  cast(x: Tensor, dtype: DType): Tensor;
  backward(x: Tensor, grad?: Tensor, opts?: BackwardOptions): void;
  read(x: Tensor): Promise<Float32Array | Int32Array | Uint32Array>;
}

let installedOps: TensorOps | null = null;

/** Called once by src/autograd/methods.ts. */
export function installTensorOps(ops: TensorOps): void {
  installedOps = ops;
}

function tensorOps(): TensorOps {
  if (!installedOps) {
    throw new Error(
      'Tensor methods need the differentiable ops: import them from the package root (rae-webgpu / src/index.ts) or from src/autograd/ops/index.js',
    );
  }
  return installedOps;
}

function shapeArgs(args: ShapeArgs): number[] {
  return args.length === 1 && Array.isArray(args[0]) ? [...(args[0] as readonly number[])] : (args as number[]);
}

/** The table-driven unary methods (`x.exp()`, …): one per entry of src/core/pointwise.ts flagged `method`. */
type UnaryMethods = { [K in UnaryMethod]: () => Tensor };

/** Scopes track the tensors created inside them (see scope.ts). */
export const scopeStack: Set<Tensor>[] = [];

// Declaration merging: the class below gets one typed method per table entry (installed after it).
export interface Tensor extends UnaryMethods {}

// biome-ignore lint/suspicious/noUnsafeDeclarationMerging: the methods are installed from the op table right after the class, so every declared member exists at run time.
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
    if (v && this.dtype !== 'f32' && this.dtype !== 'f16')
      throw new TypeError(`requiresGrad: only floating tensors can require gradients, this one is ${this.dtype}`);
    this._requiresGrad = v;
  }

  get storage(): Storage {
    if (!this._storage)
      throw new Error(
        `tensor #${this.id}${this.name ? ` (${this.name})` : ''} of shape [${this.shape.join(', ')}] was disposed and cannot be used`,
      );
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

  // ---- Methods (PyTorch names); each is one differentiable op of src/autograd. ----

  add(o: Scalarish): Tensor {
    return tensorOps().binary('add', this, o);
  }
  sub(o: Scalarish): Tensor {
    return tensorOps().binary('sub', this, o);
  }
  mul(o: Scalarish): Tensor {
    return tensorOps().binary('mul', this, o);
  }
  div(o: Scalarish): Tensor {
    return tensorOps().binary('div', this, o);
  }
  maximum(o: Scalarish): Tensor {
    return tensorOps().binary('maximum', this, o);
  }
  minimum(o: Scalarish): Tensor {
    return tensorOps().binary('minimum', this, o);
  }
  eq(o: Scalarish): Tensor {
    return tensorOps().compare('eq', this, o);
  }
  ne(o: Scalarish): Tensor {
    return tensorOps().compare('ne', this, o);
  }
  lt(o: Scalarish): Tensor {
    return tensorOps().compare('lt', this, o);
  }
  le(o: Scalarish): Tensor {
    return tensorOps().compare('le', this, o);
  }
  gt(o: Scalarish): Tensor {
    return tensorOps().compare('gt', this, o);
  }
  ge(o: Scalarish): Tensor {
    return tensorOps().compare('ge', this, o);
  }
  pow(p: number): Tensor {
    return tensorOps().pow(this, p);
  }
  clamp(min?: number, max?: number): Tensor {
    return tensorOps().clamp(this, min, max);
  }
  gelu(opts: { approximate?: 'none' | 'tanh' } = {}): Tensor {
    return tensorOps().gelu(this, opts.approximate ?? 'none');
  }
  matmul(o: Tensor): Tensor {
    return tensorOps().matmul(this, o);
  }
  sum(dims?: Dims, opts?: ReduceOptions): Tensor {
    return tensorOps().reduce('sum', this, dims, opts);
  }
  mean(dims?: Dims, opts?: ReduceOptions): Tensor {
    return tensorOps().reduce('mean', this, dims, opts);
  }
  max(dims?: Dims, opts?: ReduceOptions): Tensor {
    return tensorOps().reduce('max', this, dims, opts);
  }
  min(dims?: Dims, opts?: ReduceOptions): Tensor {
    return tensorOps().reduce('min', this, dims, opts);
  }
  var(dims?: Dims, opts?: ReduceOptions & { correction?: number }): Tensor {
    return tensorOps().variance(this, dims, opts);
  }
  argmax(dim?: number, opts?: ReduceOptions): Tensor {
    return tensorOps().argReduce('argmax', this, dim, opts);
  }
  argmin(dim?: number, opts?: ReduceOptions): Tensor {
    return tensorOps().argReduce('argmin', this, dim, opts);
  }
  softmax(dim = -1): Tensor {
    return tensorOps().softmax(this, dim, false);
  }
  logSoftmax(dim = -1): Tensor {
    return tensorOps().softmax(this, dim, true);
  }
  reshape(...shape: ShapeArgs): Tensor {
    return tensorOps().reshape(this, shapeArgs(shape), false);
  }
  view(...shape: ShapeArgs): Tensor {
    return tensorOps().reshape(this, shapeArgs(shape), true);
  }
  flatten(startDim?: number, endDim?: number): Tensor {
    return tensorOps().flatten(this, startDim, endDim);
  }
  permute(...dims: ShapeArgs): Tensor {
    return tensorOps().permute(this, shapeArgs(dims));
  }
  transpose(d0?: number, d1?: number): Tensor {
    return tensorOps().transpose(this, d0, d1);
  }
  /** Transpose of the last two dims. */
  get T(): Tensor {
    return tensorOps().transpose(this, -2, -1);
  }
  unsqueeze(dim: number): Tensor {
    return tensorOps().unsqueeze(this, dim);
  }
  squeeze(dim?: number): Tensor {
    return tensorOps().squeeze(this, dim);
  }
  narrow(dim: number, start: number, length: number): Tensor {
    return tensorOps().narrow(this, dim, start, length);
  }
  slice(dim: number, start?: number, end?: number): Tensor {
    return tensorOps().slice(this, dim, start, end);
  }
  expand(...shape: ShapeArgs): Tensor {
    return tensorOps().expand(this, shapeArgs(shape));
  }
  contiguous(): Tensor {
    return tensorOps().contiguous(this);
  }
  detach(): Tensor {
    return tensorOps().detach(this);
  }
  to(dtype: DType): Tensor {
    return tensorOps().cast(this, dtype);
  }
  backward(grad?: Tensor, opts?: BackwardOptions): void {
    tensorOps().backward(this, grad, opts);
  }
  toArray(): Promise<Float32Array | Int32Array | Uint32Array> {
    return tensorOps().read(this);
  }
  async item(): Promise<number> {
    if (this.size !== 1) throw new RangeError(`item: tensor of shape [${this.shape.join(', ')}] has ${this.size} elements, expected 1`);
    return (await tensorOps().read(this))[0];
  }
  /** Nested JS arrays (for printing and tests). */
  async tolist(): Promise<unknown> {
    const flat = Array.from(await tensorOps().read(this));
    const build = (dim: number, off: number): unknown => {
      if (dim === this.rank) return flat[off];
      const stride = sizeOf(this.shape.slice(dim + 1));
      return Array.from({ length: this.shape[dim] }, (_, i) => build(dim + 1, off + i * stride));
    };
    return build(0, 0);
  }

  toString(): string {
    return `Tensor(#${this.id}, ${this.dtype}, [${this.shape.join(', ')}]${this.requiresGrad ? ', requiresGrad' : ''})`;
  }
}

for (const op of UNARY_METHODS) {
  Object.defineProperty(Tensor.prototype, op, {
    value: function (this: Tensor): Tensor {
      return tensorOps().unary(op, this);
    },
    writable: true,
    configurable: true,
  });
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

/** The id the next tensor will get (ids only grow: a tensor is newer than its graph inputs). */
export function nextTensorId(): number {
  return nextId;
}

export function liveTensorCount(): number {
  return liveTensors;
}
