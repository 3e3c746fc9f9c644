/** Shape arithmetic shared by tensors and kernels. */

export type Shape = readonly number[];

/** Dims a reduction runs over: one, several, or (undefined) all. */
export type Dims = number | number[] | undefined;

export interface ReduceOptions {
  keepdim?: boolean;
}

export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function contiguousStrides(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

export function validateShape(shape: unknown, op: string): number[] {
  if (!Array.isArray(shape)) throw new TypeError(`${op}: shape must be an array of sizes, got ${JSON.stringify(shape)}`);
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isInteger(d) || d < 0) {
      throw new RangeError(
        `${op}: shape ${JSON.stringify(shape)} has an invalid size ${JSON.stringify(d)}; sizes must be non-negative integers`,
      );
    }
  }
  if (sizeOf(shape) > Number.MAX_SAFE_INTEGER) throw new RangeError(`${op}: shape ${JSON.stringify(shape)} is too large`);
  return [...shape];
}

/** NumPy broadcasting of two shapes; throws naming the op and both shapes. */
export function broadcastShapes(a: Shape, b: Shape, op = 'broadcast'): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new RangeError(`${op}: shapes [${a.join(', ')}] and [${b.join(', ')}] cannot be broadcast together (dim ${i}: ${da} vs ${db})`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Normalises a possibly negative dim; throws naming the op when out of range. */
export function normDim(dim: number, rank: number, op: string): number {
  if (!Number.isInteger(dim) || dim < -Math.max(rank, 1) || dim >= Math.max(rank, 1)) {
    throw new RangeError(
      `${op}: dim ${dim} is out of range for a tensor of rank ${rank} (expected ${-Math.max(rank, 1)}..${Math.max(rank, 1) - 1})`,
    );
  }
  return dim < 0 ? dim + rank : dim;
}

export function shapesEqual(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function fmt(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}
