/**
 * Reductions over any set of axes. Adjacent reduced axes of a contiguous tensor reduce in place
 * as an [outer, R, inner] layout; otherwise the reduced axes are permuted last and copied once.
 */
import { reduceInto, varianceInto, type ReduceOp } from '../../kernels/reduce.js';
import { asShape, contiguousCopy } from '../../tensor/creation.js';
import { scope } from '../../tensor/scope.js';
import { normDim, fmt, shapesEqual, sizeOf, type Dims, type ReduceOptions } from '../../core/shape.js';
import { empty, type Tensor, viewOf } from '../../tensor/tensor.js';
import { record } from '../tape.js';
import { map } from './map.js';
import { assertFloat, assertTensor } from './util.js';

export type { Dims, ReduceOptions } from '../../core/shape.js';

function normDims(x: Tensor, dims: Dims, op: string): number[] {
  if (dims === undefined) return x.shape.map((_, i) => i);
  const list = (Array.isArray(dims) ? dims : [dims]).map((d) => normDim(d, x.rank, op));
  if (new Set(list).size !== list.length) throw new RangeError(`${op}: repeated dim in ${JSON.stringify(dims)}`);
  return list.sort((a, b) => a - b);
}

function keptShape(shape: readonly number[], dims: number[], keepdim: boolean): number[] {
  const out: number[] = [];
  shape.forEach((d, i) => {
    if (!dims.includes(i)) out.push(d);
    else if (keepdim) out.push(1);
  });
  return out;
}

/** Runs a reduce kernel; returns the result shaped [kept dims] (keepdim handled by caller). */
function runReduce(x: Tensor, dims: number[], op: ReduceOp | { variance: number }, outDtype: 'f32' | 'i32' = 'f32'): Tensor {
  return scope(() => reduceKernel(x, dims, op, outDtype));
}

function reduceKernel(x: Tensor, dims: number[], op: ReduceOp | { variance: number }, outDtype: 'f32' | 'i32'): Tensor {
  const rank = x.rank;
  const adjacent = dims.every((d, i) => i === 0 || d === dims[i - 1] + 1);
  let src = x;
  let first = dims[0] ?? rank;
  let last = dims[dims.length - 1] ?? rank - 1;
  if (!(adjacent && x.isContiguous)) {
    const kept = x.shape.map((_, i) => i).filter((i) => !dims.includes(i));
    const perm = [...kept, ...dims];
    src = contiguousCopy(
      viewOf(
        x,
        perm.map((p) => x.shape[p]),
        perm.map((p) => x.strides[p]),
        x.offset,
      ),
    );
    first = kept.length;
    last = rank - 1;
  }
  const outer = sizeOf(src.shape.slice(0, first));
  const R = sizeOf(src.shape.slice(first, last + 1));
  const inner = sizeOf(src.shape.slice(last + 1));
  const out = empty([outer * inner], outDtype);
  const layout = { outer, R, inner, sOuter: R * inner, sR: inner, sInner: 1 };
  if (typeof op === 'object') varianceInto(src, layout, out, op.variance);
  else reduceInto(src, layout, out, op);
  return asShape(out, keptShape(x.shape, dims, false));
}

/** Gradient of a reduction: broadcast g (kept-dims shape) back over the reduced axes. */
function expandBack(g: Tensor, inShape: readonly number[], dims: number[], expr: string, extra: Tensor[] = [], scalars?: number[]): Tensor {
  return map('reduce_grad', [asShape(g, keptShape(inShape, dims, true)), ...extra], expr, { shape: inShape, dtype: g.dtype, scalars });
}

function reduceOp(name: 'sum' | 'mean', x: Tensor, dims: Dims, opts: ReduceOptions): Tensor {
  assertTensor(x, name);
  const d = normDims(x, dims, name);
  const R = sizeOf(d.map((i) => x.shape[i]));
  if (name === 'mean') assertFloat(x, name);
  const y = scope(() => (opts.keepdim ? asShape(runReduce(x, d, name), keptShape(x.shape, d, true)) : runReduce(x, d, name)));
  return record(name, y, [x], (g) => [expandBack(g, x.shape, d, name === 'mean' ? 'in0 / s0' : 'in0', [], [R])]);
}

export const sum = (x: Tensor, dims?: Dims, opts: ReduceOptions = {}) => reduceOp('sum', x, dims, opts);
export const mean = (x: Tensor, dims?: Dims, opts: ReduceOptions = {}) => reduceOp('mean', x, dims, opts);

function extremum(name: 'max' | 'min', x: Tensor, dims: Dims, opts: ReduceOptions): Tensor {
  assertTensor(x, name);
  const d = normDims(x, dims, name);
  if (x.size === 0) throw new RangeError(`${name}: cannot reduce an empty tensor of shape ${fmt(x.shape)}`);
  const out = scope(() => {
    const y = runReduce(x, d, name);
    return opts.keepdim ? asShape(y, keptShape(x.shape, d, true)) : y;
  });
  return record(
    name,
    out,
    [x],
    (g, [xs, ys]) => {
      // Ties share the gradient equally (torch.amax semantics).
      const yb = asShape(ys, keptShape(x.shape, d, true));
      const mask = map(`${name}_mask`, [xs, yb], 'select(0.0, 1.0, in0 == in1)', { shape: x.shape, dtype: 'f32' });
      const countK = asShape(runReduce(mask, d, 'sum'), keptShape(x.shape, d, true));
      const gk = asShape(g, keptShape(x.shape, d, true));
      return [map(`${name}_grad`, [gk, mask, countK], 'in0 * in1 / in2', { shape: x.shape, dtype: g.dtype })];
    },
    [x, out],
  );
}

export const max = (x: Tensor, dims?: Dims, opts: ReduceOptions = {}) => extremum('max', x, dims, opts);
export const min = (x: Tensor, dims?: Dims, opts: ReduceOptions = {}) => extremum('min', x, dims, opts);

/** Variance with Bessel-style correction (torch.var semantics, default correction 1). */
export function variance(x: Tensor, dims?: Dims, opts: ReduceOptions & { correction?: number } = {}): Tensor {
  assertTensor(x, 'var');
  assertFloat(x, 'var');
  const d = normDims(x, dims, 'var');
  const correction = opts.correction ?? 1;
  const R = sizeOf(d.map((i) => x.shape[i]));
  const y = scope(() => {
    const v = runReduce(x, d, { variance: correction });
    return opts.keepdim ? asShape(v, keptShape(x.shape, d, true)) : v;
  });
  return record(
    'var',
    y,
    [x],
    (g, [xs]) => {
      const mk = asShape(runReduce(xs, d, 'mean'), keptShape(x.shape, d, true));
      return [expandBack(g, x.shape, d, 'in0 * 2.0 * (in1 - in2) / s0', [xs, mk], [Math.max(R - correction, 0)])];
    },
    [x],
  );
}

/** Index of the largest element along `dim` (i32; first occurrence wins). Not differentiable. */
export function argmax(x: Tensor, dim?: number, opts: ReduceOptions = {}): Tensor {
  return argExt('argmax', x, dim, opts);
}
export function argmin(x: Tensor, dim?: number, opts: ReduceOptions = {}): Tensor {
  return argExt('argmin', x, dim, opts);
}

function argExt(op: 'argmax' | 'argmin', x: Tensor, dim: number | undefined, opts: ReduceOptions): Tensor {
  assertTensor(x, op);
  if (x.size === 0) throw new RangeError(`${op}: cannot reduce an empty tensor`);
  const d = dim === undefined ? undefined : normDim(dim, x.rank, op);
  return scope(() => {
    if (d === undefined) return runReduce(x.isContiguous ? viewOf(x, [x.size], [1], x.offset) : contiguousCopy(x), [0], op, 'i32');
    const y = runReduce(x, [d], op, 'i32');
    return opts.keepdim ? asShape(y, keptShape(x.shape, [d], true)) : y;
  });
}

/** Sums a broadcast gradient back to `shape` (NumPy broadcasting in reverse). */
export function sumToShape(g: Tensor, shape: readonly number[]): Tensor {
  if (shapesEqual(g.shape, shape)) return g;
  const lead = g.rank - shape.length;
  const dims: number[] = [];
  for (let i = 0; i < g.rank; i++) if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) dims.push(i);
  if (dims.length === 0) return asShape(g, shape);
  return scope(() => asShape(runReduce(g, dims, 'sum'), shape));
}
