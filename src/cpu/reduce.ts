/**
 * Reductions over a set of axes, with torch semantics:
 *   - `axes` may be a number or a list; negative axes count from the end;
 *   - `axes` undefined or [] reduces over every axis (torch.sum(x, dim=[]) also reduces all);
 *   - `keepdim` keeps reduced axes as size 1.
 */
import { type NDArray, forEachIndex, ndSize, ndStrides, normalizeAxis } from './ndarray.js';

export type Axes = number | number[] | undefined;

export interface ReduceOptions {
  keepdim?: boolean;
}

/** Sorted, de-duplicated, non-negative axes; throws on duplicates or out-of-range. */
export function resolveAxes(axes: Axes, rank: number): number[] {
  if (axes === undefined) return [...Array(rank).keys()];
  const list = typeof axes === 'number' ? [axes] : axes;
  if (list.length === 0) return [...Array(rank).keys()];
  const resolved = list.map((a) => normalizeAxis(a, rank));
  if (new Set(resolved).size !== resolved.length) throw new Error(`duplicate axes [${list.join(', ')}]`);
  return resolved.sort((a, b) => a - b);
}

/** Output shape of a reduction. */
export function reducedShape(shape: readonly number[], axes: readonly number[], keepdim: boolean): number[] {
  const out: number[] = [];
  shape.forEach((d, i) => {
    if (!axes.includes(i)) out.push(d);
    else if (keepdim) out.push(1);
  });
  return out;
}

/**
 * Generic fold: every input element is combined into the accumulator of its output slot.
 * Returns the accumulators (in keepdim layout; the caller reshapes) and the group size.
 */
function fold(x: NDArray, axes: readonly number[], init: number, combine: (acc: number, v: number) => number) {
  const keepShape = reducedShape(x.shape, axes, true);
  const acc = new Float64Array(ndSize(keepShape)).fill(init);
  // Strides into the accumulator, with 0 on reduced axes so a whole group hits one slot.
  const accStrides = ndStrides(keepShape).map((s, i) => (axes.includes(i) ? 0 : s));
  forEachIndex(x.shape, [accStrides], (i, [o]) => {
    acc[o] = combine(acc[o], x.data[i]);
  });
  let count = 1;
  for (const a of axes) count *= x.shape[a];
  return { acc, count };
}

function finish(x: NDArray, axes: number[], keepdim: boolean | undefined, data: Float64Array): NDArray {
  return { data, shape: reducedShape(x.shape, axes, keepdim ?? false) };
}

export function sum(x: NDArray, axes?: Axes, opts: ReduceOptions = {}): NDArray {
  const ax = resolveAxes(axes, x.shape.length);
  return finish(x, ax, opts.keepdim, fold(x, ax, 0, (a, v) => a + v).acc);
}

export function mean(x: NDArray, axes?: Axes, opts: ReduceOptions = {}): NDArray {
  const ax = resolveAxes(axes, x.shape.length);
  const { acc, count } = fold(x, ax, 0, (a, v) => a + v);
  return finish(
    x,
    ax,
    opts.keepdim,
    acc.map((s) => s / count),
  );
}

/** max/min propagate NaN (as torch does); Math.max/Math.min already do. Empty groups give -inf/+inf. */
export function max(x: NDArray, axes?: Axes, opts: ReduceOptions = {}): NDArray {
  const ax = resolveAxes(axes, x.shape.length);
  return finish(x, ax, opts.keepdim, fold(x, ax, -Infinity, Math.max).acc);
}

export function min(x: NDArray, axes?: Axes, opts: ReduceOptions = {}): NDArray {
  const ax = resolveAxes(axes, x.shape.length);
  return finish(x, ax, opts.keepdim, fold(x, ax, Infinity, Math.min).acc);
}

export interface VarOptions extends ReduceOptions {
  /** Divisor is max(0, N - correction); 1 (default) is the unbiased estimator, 0 the population variance. */
  correction?: number;
}

/** torch.var(x, dims, correction=1, keepdim). Two passes (mean, then squared deviations) for accuracy. */
export function variance(x: NDArray, axes?: Axes, opts: VarOptions = {}): NDArray {
  const ax = resolveAxes(axes, x.shape.length);
  const correction = opts.correction ?? 1;
  const mu = mean(x, ax, { keepdim: true });
  const keepShape = mu.shape;
  const muStrides = ndStrides(keepShape).map((s, i) => (ax.includes(i) ? 0 : s));
  const acc = new Float64Array(mu.data.length);
  forEachIndex(x.shape, [muStrides], (i, [o]) => {
    const d = x.data[i] - mu.data[o];
    acc[o] += d * d;
  });
  let count = 1;
  for (const a of ax) count *= x.shape[a];
  const divisor = Math.max(0, count - correction);
  return finish(
    x,
    ax,
    opts.keepdim,
    acc.map((s) => s / divisor),
  );
}
export { variance as var_ };

/**
 * torch.argmax(x, dim, keepdim): index of the first maximum along `dim`, as a float.
 * NaN counts as larger than everything (torch convention). `dim` undefined -> flat index.
 */
export function argmax(x: NDArray, dim?: number, opts: ReduceOptions = {}): NDArray {
  if (dim === undefined) {
    const flat: NDArray = { data: x.data, shape: [x.data.length] };
    const r = argmax(flat, 0);
    return opts.keepdim ? { data: r.data, shape: x.shape.map(() => 1) } : r;
  }
  const d = normalizeAxis(dim, x.shape.length);
  const n = x.shape[d];
  if (n === 0) throw new Error('argmax of an empty dimension');
  const outer = ndSize(x.shape.slice(0, d));
  const inner = ndSize(x.shape.slice(d + 1));
  const out = new Float64Array(outer * inner);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      let best = 0;
      let bestVal = x.data[o * n * inner + i];
      for (let k = 1; k < n && !Number.isNaN(bestVal); k++) {
        const v = x.data[(o * n + k) * inner + i];
        if (v > bestVal || Number.isNaN(v)) {
          best = k;
          bestVal = v;
        }
      }
      out[o * inner + i] = best;
    }
  }
  return finish(x, [d], opts.keepdim, out);
}

/** Convenience: sum of all elements as a plain number. */
export function sumAll(x: NDArray): number {
  let s = 0;
  for (let i = 0; i < x.data.length; i++) s += x.data[i];
  return s;
}
