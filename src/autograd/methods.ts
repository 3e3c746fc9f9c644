/**
 * PyTorch-style methods on Tensor (x.add(y).relu(), loss.backward(), …), installed on the
 * prototype here so that src/tensor stays free of autograd imports.
 */
import { toArray } from '../tensor/creation.js';
import type { DType } from '../tensor/dtype.js';
import { Tensor } from '../tensor/tensor.js';
import * as ops from './ops/index.js';
import { backward, type BackwardOptions } from './tape.js';

type S = ops.Scalarish;

declare module '../tensor/tensor.js' {
  interface Tensor {
    add(o: S): Tensor;
    sub(o: S): Tensor;
    mul(o: S): Tensor;
    div(o: S): Tensor;
    neg(): Tensor;
    pow(p: number): Tensor;
    exp(): Tensor;
    log(): Tensor;
    sqrt(): Tensor;
    rsqrt(): Tensor;
    abs(): Tensor;
    sin(): Tensor;
    cos(): Tensor;
    tanh(): Tensor;
    sigmoid(): Tensor;
    relu(): Tensor;
    silu(): Tensor;
    gelu(opts?: { approximate?: 'none' | 'tanh' }): Tensor;
    clamp(min?: number, max?: number): Tensor;
    maximum(o: S): Tensor;
    minimum(o: S): Tensor;
    eq(o: S): Tensor;
    ne(o: S): Tensor;
    lt(o: S): Tensor;
    le(o: S): Tensor;
    gt(o: S): Tensor;
    ge(o: S): Tensor;
    matmul(o: Tensor): Tensor;
    sum(dims?: ops.Dims, opts?: ops.ReduceOptions): Tensor;
    mean(dims?: ops.Dims, opts?: ops.ReduceOptions): Tensor;
    max(dims?: ops.Dims, opts?: ops.ReduceOptions): Tensor;
    min(dims?: ops.Dims, opts?: ops.ReduceOptions): Tensor;
    var(dims?: ops.Dims, opts?: ops.ReduceOptions & { correction?: number }): Tensor;
    argmax(dim?: number, opts?: ops.ReduceOptions): Tensor;
    argmin(dim?: number, opts?: ops.ReduceOptions): Tensor;
    softmax(dim?: number): Tensor;
    logSoftmax(dim?: number): Tensor;
    reshape(...shape: number[] | [readonly number[]]): Tensor;
    view(...shape: number[] | [readonly number[]]): Tensor;
    flatten(startDim?: number, endDim?: number): Tensor;
    permute(...dims: number[] | [readonly number[]]): Tensor;
    transpose(d0?: number, d1?: number): Tensor;
    /** Transpose of the last two dims. */
    readonly T: Tensor;
    unsqueeze(dim: number): Tensor;
    squeeze(dim?: number): Tensor;
    narrow(dim: number, start: number, length: number): Tensor;
    slice(dim: number, start?: number, end?: number): Tensor;
    expand(...shape: number[] | [readonly number[]]): Tensor;
    contiguous(): Tensor;
    detach(): Tensor;
    to(dtype: DType): Tensor;
    backward(grad?: Tensor, opts?: BackwardOptions): void;
    toArray(): Promise<Float32Array | Int32Array | Uint32Array>;
    item(): Promise<number>;
    /** Nested JS arrays (for printing and tests). */
    tolist(): Promise<unknown>;
  }
}

function shapeArgs(args: (number | readonly number[])[]): number[] {
  return args.length === 1 && Array.isArray(args[0]) ? [...(args[0] as number[])] : (args as number[]);
}

const P = Tensor.prototype as unknown as Record<string, unknown>;
const methods: Record<string, (this: Tensor, ...a: never[]) => unknown> = {
  add(this: Tensor, o: S) {
    return ops.add(this, o);
  },
  sub(this: Tensor, o: S) {
    return ops.sub(this, o);
  },
  mul(this: Tensor, o: S) {
    return ops.mul(this, o);
  },
  div(this: Tensor, o: S) {
    return ops.div(this, o);
  },
  neg(this: Tensor) {
    return ops.neg(this);
  },
  pow(this: Tensor, p: number) {
    return ops.powScalar(this, p);
  },
  clamp(this: Tensor, lo?: number, hi?: number) {
    return ops.clamp(this, lo, hi);
  },
  maximum(this: Tensor, o: S) {
    return ops.maximum(this, o);
  },
  minimum(this: Tensor, o: S) {
    return ops.minimum(this, o);
  },
  gelu(this: Tensor, opts?: { approximate?: 'none' | 'tanh' }) {
    return ops.unary(opts?.approximate === 'tanh' ? 'gelu_tanh' : 'gelu', this);
  },
  matmul(this: Tensor, o: Tensor) {
    return ops.matmul(this, o);
  },
  sum(this: Tensor, d?: ops.Dims, o?: ops.ReduceOptions) {
    return ops.sum(this, d, o);
  },
  mean(this: Tensor, d?: ops.Dims, o?: ops.ReduceOptions) {
    return ops.mean(this, d, o);
  },
  max(this: Tensor, d?: ops.Dims, o?: ops.ReduceOptions) {
    return ops.max(this, d, o);
  },
  min(this: Tensor, d?: ops.Dims, o?: ops.ReduceOptions) {
    return ops.min(this, d, o);
  },
  var(this: Tensor, d?: ops.Dims, o?: ops.ReduceOptions & { correction?: number }) {
    return ops.variance(this, d, o);
  },
  argmax(this: Tensor, d?: number, o?: ops.ReduceOptions) {
    return ops.argmax(this, d, o);
  },
  argmin(this: Tensor, d?: number, o?: ops.ReduceOptions) {
    return ops.argmin(this, d, o);
  },
  softmax(this: Tensor, d = -1) {
    return ops.softmax(this, d);
  },
  logSoftmax(this: Tensor, d = -1) {
    return ops.logSoftmax(this, d);
  },
  reshape(this: Tensor, ...s: number[]) {
    return ops.reshape(this, shapeArgs(s));
  },
  view(this: Tensor, ...s: number[]) {
    return ops.view(this, shapeArgs(s));
  },
  flatten(this: Tensor, a?: number, b?: number) {
    return ops.flatten(this, a, b);
  },
  permute(this: Tensor, ...d: number[]) {
    return ops.permute(this, shapeArgs(d));
  },
  transpose(this: Tensor, a?: number, b?: number) {
    return ops.transpose(this, a, b);
  },
  unsqueeze(this: Tensor, d: number) {
    return ops.unsqueeze(this, d);
  },
  squeeze(this: Tensor, d?: number) {
    return ops.squeeze(this, d);
  },
  narrow(this: Tensor, d: number, s: number, l: number) {
    return ops.narrow(this, d, s, l);
  },
  slice(this: Tensor, d: number, s?: number, e?: number) {
    return ops.slice(this, d, s, e);
  },
  expand(this: Tensor, ...s: number[]) {
    return ops.expand(this, shapeArgs(s));
  },
  contiguous(this: Tensor) {
    return ops.contiguous(this);
  },
  detach(this: Tensor) {
    return ops.detach(this);
  },
  to(this: Tensor, dtype: DType) {
    return ops.cast(this, dtype);
  },
  backward(this: Tensor, g?: Tensor, o?: BackwardOptions) {
    return backward(this, g, o);
  },
  toArray(this: Tensor) {
    return toArray(this);
  },
  async item(this: Tensor) {
    if (this.size !== 1) throw new RangeError(`item: tensor of shape [${this.shape.join(', ')}] has ${this.size} elements, expected 1`);
    return (await toArray(this))[0];
  },
  async tolist(this: Tensor) {
    const flat = Array.from(await toArray(this));
    const build = (dim: number, off: number): unknown => {
      if (dim === this.rank) return flat[off];
      const stride = this.shape.slice(dim + 1).reduce((a, b) => a * b, 1);
      return Array.from({ length: this.shape[dim] }, (_, i) => build(dim + 1, off + i * stride));
    };
    return build(0, 0);
  },
};
for (const op of ['exp', 'log', 'sqrt', 'rsqrt', 'abs', 'sin', 'cos', 'tanh', 'sigmoid', 'relu', 'silu'] as const) {
  methods[op] = function (this: Tensor) {
    return ops.unary(op, this);
  };
}
for (const op of ['eq', 'ne', 'lt', 'le', 'gt', 'ge'] as const) {
  methods[op] = function (this: Tensor, o: S) {
    return ops.compare(op, this, o);
  } as never;
}
for (const [k, f] of Object.entries(methods)) P[k] = f;
Object.defineProperty(Tensor.prototype, 'T', {
  get(this: Tensor) {
    return ops.transpose(this, -2, -1);
  },
});
