/**
 * Float64 n-dimensional array used by the CPU reference ("oracle") implementation.
 *
 * Everything here favours obviousness over speed: arrays are always contiguous and
 * row-major, every op returns a fresh array, and inputs are never mutated.
 */

export interface NDArray {
  data: Float64Array;
  shape: number[];
}

/** Number of elements of a shape (1 for the scalar shape []). */
export function ndSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Row-major strides, in elements. */
export function ndStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

function checkShape(shape: readonly number[]): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`invalid shape [${shape.join(', ')}]`);
  }
}

/** Wraps (a copy of) `data` as an NDArray, checking that its length matches the shape. */
export function nd(data: ArrayLike<number>, shape: readonly number[]): NDArray {
  checkShape(shape);
  const n = ndSize(shape);
  if (data.length !== n) {
    throw new Error(`nd: data has ${data.length} elements but shape [${shape.join(', ')}] needs ${n}`);
  }
  return { data: Float64Array.from(data), shape: [...shape] };
}

export function ndZeros(shape: readonly number[]): NDArray {
  checkShape(shape);
  return { data: new Float64Array(ndSize(shape)), shape: [...shape] };
}

export function ndFull(shape: readonly number[], value: number): NDArray {
  const out = ndZeros(shape);
  out.data.fill(value);
  return out;
}

/** A 0-d array holding one number. */
export function ndScalar(value: number): NDArray {
  return { data: Float64Array.of(value), shape: [] };
}

/** 0, 1, ..., n-1 as a 1-D array (handy for building test inputs). */
export function ndArange(n: number): NDArray {
  const out = ndZeros([n]);
  for (let i = 0; i < n; i++) out.data[i] = i;
  return out;
}

/** Independent copy. */
export function ndClone(x: NDArray): NDArray {
  return { data: Float64Array.from(x.data), shape: [...x.shape] };
}

/** Resolves a possibly negative axis against `rank`, throwing if out of range. */
export function normalizeAxis(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) {
    throw new Error(`axis ${axis} out of range for rank ${rank}`);
  }
  return a;
}

/** Flat row-major offset -> multi-index. */
export function unravelIndex(flat: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let i = shape.length - 1; i >= 0; i--) {
    idx[i] = flat % shape[i];
    flat = Math.floor(flat / shape[i]);
  }
  return idx;
}

/** Element at a multi-index (bounds-checked; negative indices not allowed). */
export function ndGet(x: NDArray, index: readonly number[]): number {
  if (index.length !== x.shape.length) throw new Error(`ndGet: index rank ${index.length} != ${x.shape.length}`);
  const strides = ndStrides(x.shape);
  let off = 0;
  for (let i = 0; i < index.length; i++) {
    if (index[i] < 0 || index[i] >= x.shape[i]) throw new Error(`ndGet: index ${index[i]} out of range on axis ${i}`);
    off += index[i] * strides[i];
  }
  return x.data[off];
}

/** Nested JS arrays, for readable test expectations. */
export function ndToNested(x: NDArray): unknown {
  const build = (axis: number, offset: number, strides: number[]): unknown => {
    if (axis === x.shape.length) return x.data[offset];
    const out: unknown[] = [];
    for (let i = 0; i < x.shape[axis]; i++) out.push(build(axis + 1, offset + i * strides[axis], strides));
    return out;
  };
  return build(0, 0, ndStrides(x.shape));
}

/** NumPy broadcasting of two shapes (align from the right; sizes must match or be 1). */
export function broadcastShapes(a: readonly number[], b: readonly number[]): number[] {
  const rank = Math.max(a.length, b.length);
  const out = new Array<number>(rank);
  for (let i = 0; i < rank; i++) {
    const da = i < rank - a.length ? 1 : a[i - (rank - a.length)];
    const db = i < rank - b.length ? 1 : b[i - (rank - b.length)];
    if (da !== db && da !== 1 && db !== 1) {
      throw new Error(`shapes [${a.join(', ')}] and [${b.join(', ')}] cannot be broadcast together`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/**
 * For reading `x` as if it had shape `target` (right-aligned broadcasting): the strides to
 * use on `x.data` for each target axis, with 0 on broadcast axes. Throws if not broadcastable.
 */
export function broadcastStrides(xShape: readonly number[], target: readonly number[]): number[] {
  if (xShape.length > target.length) {
    throw new Error(`cannot broadcast shape [${xShape.join(', ')}] to [${target.join(', ')}]`);
  }
  const xStrides = ndStrides(xShape);
  const lead = target.length - xShape.length;
  const out = new Array<number>(target.length).fill(0);
  for (let i = 0; i < xShape.length; i++) {
    const d = xShape[i];
    if (d === target[lead + i]) out[lead + i] = xStrides[i];
    else if (d === 1) out[lead + i] = 0;
    else throw new Error(`cannot broadcast shape [${xShape.join(', ')}] to [${target.join(', ')}]`);
  }
  return out;
}

/**
 * Calls `visit(outFlat, offsets)` for every element of `shape` in row-major order, where
 * offsets[k] is the flat offset into operand k read with `operandStrides[k]`.
 * This is the one loop that all broadcasting ops share.
 */
export function forEachIndex(
  shape: readonly number[],
  operandStrides: readonly (readonly number[])[],
  visit: (outFlat: number, offsets: number[]) => void,
): void {
  const total = ndSize(shape);
  if (total === 0) return;
  const rank = shape.length;
  const idx = new Array<number>(rank).fill(0);
  const offsets = operandStrides.map(() => 0);
  for (let flat = 0; flat < total; flat++) {
    visit(flat, offsets);
    // Odometer increment, keeping each operand offset in step.
    for (let ax = rank - 1; ax >= 0; ax--) {
      idx[ax]++;
      for (let k = 0; k < offsets.length; k++) offsets[k] += operandStrides[k][ax];
      if (idx[ax] < shape[ax]) break;
      for (let k = 0; k < offsets.length; k++) offsets[k] -= operandStrides[k][ax] * shape[ax];
      idx[ax] = 0;
    }
  }
}

/** Materialises `x` broadcast to `shape` (NumPy rules). */
export function broadcastTo(x: NDArray, shape: readonly number[]): NDArray {
  const target = [...shape];
  const strides = broadcastStrides(x.shape, target);
  const out = ndZeros(target);
  forEachIndex(target, [strides], (i, [o]) => {
    out.data[i] = x.data[o];
  });
  return out;
}
