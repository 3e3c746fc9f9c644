/**
 * Shape manipulation (torch semantics). All results are fresh contiguous arrays.
 */
import { type NDArray, broadcastTo, forEachIndex, ndSize, ndStrides, ndZeros, normalizeAxis } from './ndarray.js';

/** torch.reshape: one dimension may be -1 (inferred). */
export function reshape(x: NDArray, shape: readonly number[]): NDArray {
  const out = [...shape];
  const inferred = out.indexOf(-1);
  if (out.lastIndexOf(-1) !== inferred) throw new Error('reshape: only one dimension can be -1');
  if (inferred >= 0) {
    const known = ndSize(out.filter((_, i) => i !== inferred));
    if (known === 0 || x.data.length % known !== 0) {
      throw new Error(`reshape: cannot infer -1 reshaping [${x.shape.join(', ')}] to [${shape.join(', ')}]`);
    }
    out[inferred] = x.data.length / known;
  }
  if (ndSize(out) !== x.data.length || out.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new Error(`reshape: cannot reshape [${x.shape.join(', ')}] to [${shape.join(', ')}]`);
  }
  return { data: Float64Array.from(x.data), shape: out };
}

/** torch.permute: out axis i is input axis dims[i]. */
export function permute(x: NDArray, dims: readonly number[]): NDArray {
  const rank = x.shape.length;
  if (dims.length !== rank) throw new Error(`permute: got ${dims.length} dims for rank ${rank}`);
  const perm = dims.map((d) => normalizeAxis(d, rank));
  if (new Set(perm).size !== rank) throw new Error(`permute: [${dims.join(', ')}] is not a permutation`);
  const inStrides = ndStrides(x.shape);
  const outShape = perm.map((p) => x.shape[p]);
  // Walking the output in order, input offset moves by the stride of the source axis.
  const readStrides = perm.map((p) => inStrides[p]);
  const out = ndZeros(outShape);
  forEachIndex(outShape, [readStrides], (i, [src]) => {
    out.data[i] = x.data[src];
  });
  return out;
}

/** torch.transpose(x, dim0, dim1). Defaults swap the last two axes. */
export function transpose(x: NDArray, dim0 = -2, dim1 = -1): NDArray {
  const rank = x.shape.length;
  const perm = [...Array(rank).keys()];
  const a = normalizeAxis(dim0, rank);
  const b = normalizeAxis(dim1, rank);
  [perm[a], perm[b]] = [perm[b], perm[a]];
  return permute(x, perm);
}

/** torch.narrow(x, dim, start, length). */
export function narrow(x: NDArray, dim: number, start: number, length: number): NDArray {
  const d = normalizeAxis(dim, x.shape.length);
  const size = x.shape[d];
  const s = start < 0 ? start + size : start;
  if (s < 0 || length < 0 || s + length > size) {
    throw new Error(`narrow: [${start}, +${length}) out of range for size ${size} on axis ${dim}`);
  }
  return slice(x, d, s, s + length);
}

/** Python-style x[..., start:end:step, ...] on one axis (negative bounds allowed, clamped). */
export function slice(x: NDArray, dim: number, start = 0, end?: number, step = 1): NDArray {
  const d = normalizeAxis(dim, x.shape.length);
  if (!Number.isInteger(step) || step <= 0) throw new Error('slice: step must be a positive integer');
  const size = x.shape[d];
  const clampBound = (v: number) => Math.min(Math.max(v < 0 ? v + size : v, 0), size);
  const s = clampBound(start);
  const e = clampBound(end ?? size);
  const count = e > s ? Math.ceil((e - s) / step) : 0;
  const outShape = [...x.shape];
  outShape[d] = count;
  const inStrides = ndStrides(x.shape);
  const readStrides = [...inStrides];
  readStrides[d] = inStrides[d] * step;
  const out = ndZeros(outShape);
  const base = s * inStrides[d];
  forEachIndex(outShape, [readStrides], (i, [src]) => {
    out.data[i] = x.data[base + src];
  });
  return out;
}

/** torch.cat: all shapes equal except along `dim`. */
export function cat(list: readonly NDArray[], dim: number): NDArray {
  if (list.length === 0) throw new Error('cat: empty list');
  const rank = list[0].shape.length;
  const d = normalizeAxis(dim, rank);
  for (const t of list) {
    if (t.shape.length !== rank || t.shape.some((s, i) => i !== d && s !== list[0].shape[i])) {
      throw new Error(`cat: shape [${t.shape.join(', ')}] does not match [${list[0].shape.join(', ')}] outside axis ${dim}`);
    }
  }
  const outShape = [...list[0].shape];
  outShape[d] = list.reduce((acc, t) => acc + t.shape[d], 0);
  const out = ndZeros(outShape);
  // Every array contributes one contiguous chunk of (its size along d) * inner per outer index.
  const outer = ndSize(outShape.slice(0, d));
  const inner = ndSize(outShape.slice(d + 1));
  let pos = 0;
  for (let o = 0; o < outer; o++) {
    for (const t of list) {
      const chunk = t.shape[d] * inner;
      out.data.set(t.data.subarray(o * chunk, (o + 1) * chunk), pos);
      pos += chunk;
    }
  }
  return out;
}

/** torch.unsqueeze. `dim` may be in [-(rank+1), rank]. */
export function unsqueeze(x: NDArray, dim: number): NDArray {
  const d = normalizeAxis(dim, x.shape.length + 1);
  const shape = [...x.shape];
  shape.splice(d, 0, 1);
  return { data: Float64Array.from(x.data), shape };
}

/** torch.squeeze: removes the given size-1 axis, or all size-1 axes when dim is omitted. */
export function squeeze(x: NDArray, dim?: number): NDArray {
  if (dim === undefined) return { data: Float64Array.from(x.data), shape: x.shape.filter((s) => s !== 1) };
  const d = normalizeAxis(dim, x.shape.length);
  const shape = x.shape[d] === 1 ? x.shape.filter((_, i) => i !== d) : [...x.shape];
  return { data: Float64Array.from(x.data), shape };
}

/** torch.stack: inserts a new axis at `dim`. */
export function stack(list: readonly NDArray[], dim: number): NDArray {
  if (list.length === 0) throw new Error('stack: empty list');
  const rank = list[0].shape.length;
  for (const t of list) {
    if (t.shape.length !== rank || t.shape.some((s, i) => s !== list[0].shape[i])) {
      throw new Error(`stack: shape [${t.shape.join(', ')}] differs from [${list[0].shape.join(', ')}]`);
    }
  }
  const d = normalizeAxis(dim, rank + 1);
  return cat(
    list.map((t) => unsqueeze(t, d)),
    d,
  );
}

/** torch.Tensor.expand: -1 keeps a size; new leading axes may be added. */
export function expand(x: NDArray, shape: readonly number[]): NDArray {
  const lead = shape.length - x.shape.length;
  if (lead < 0) throw new Error(`expand: target [${shape.join(', ')}] has lower rank than [${x.shape.join(', ')}]`);
  const target = shape.map((s, i) => {
    if (s !== -1) return s;
    if (i < lead) throw new Error('expand: -1 not allowed for a new leading dimension');
    return x.shape[i - lead];
  });
  return broadcastTo(x, target);
}

/** torch.flatten(x, startDim, endDim). */
export function flatten(x: NDArray, startDim = 0, endDim = -1): NDArray {
  if (x.shape.length === 0) return reshape(x, [1]);
  const s = normalizeAxis(startDim, x.shape.length);
  const e = normalizeAxis(endDim, x.shape.length);
  if (e < s) throw new Error('flatten: endDim before startDim');
  const shape = [...x.shape.slice(0, s), ndSize(x.shape.slice(s, e + 1)), ...x.shape.slice(e + 1)];
  return reshape(x, shape);
}

/** torch.chunk-like split into equal pieces along dim (size must divide evenly). */
export function split(x: NDArray, pieces: number, dim: number): NDArray[] {
  const d = normalizeAxis(dim, x.shape.length);
  if (x.shape[d] % pieces !== 0) throw new Error(`split: size ${x.shape[d]} not divisible by ${pieces}`);
  const len = x.shape[d] / pieces;
  return [...Array(pieces).keys()].map((k) => narrow(x, d, k * len, len));
}
