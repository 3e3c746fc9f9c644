/**
 * Shape ops. Views (reshape of contiguous data, permute, slice, expand, squeeze) share storage;
 * their gradients are views or one copy into zeros (slice), never a materialised transpose.
 */
import { mapInto } from '../../kernels/elementwise.js';
import { asShape, contiguousCopy } from '../../tensor/creation.js';
import { fmt, normDim, shapesEqual, sizeOf, validateShape } from '../../core/shape.js';
import { scope } from '../../tensor/scope.js';
import { empty, type Tensor, viewOf } from '../../tensor/tensor.js';
import { record, SliceGrad } from '../tape.js';
import { sumToShape } from './reduce.js';
import { assertTensor, computeType } from './util.js';

/** Resolves one -1 in a target shape. */
function inferShape(x: Tensor, shape: readonly number[], op: string): number[] {
  const neg = shape.filter((d) => d === -1).length;
  if (neg > 1) throw new RangeError(`${op}: only one dimension can be -1, got ${fmt(shape)}`);
  const known = shape.filter((d) => d !== -1);
  validateShape(known, op);
  const prod = sizeOf(known);
  const out = shape.map((d) => (d === -1 ? (prod === 0 ? 0 : x.size / prod) : d));
  if (sizeOf(out) !== x.size || out.some((d) => !Number.isInteger(d))) {
    throw new RangeError(`${op}: cannot reshape tensor of shape ${fmt(x.shape)} (${x.size} elements) into ${fmt(shape)}`);
  }
  return out;
}

export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  assertTensor(x, 'reshape');
  const s = inferShape(x, shape, 'reshape');
  if (shapesEqual(s, x.shape)) return record('reshape', viewOf(x, x.shape, x.strides, x.offset), [x], (g) => [asShape(g, x.shape)]);
  const y = asShape(x, s);
  return record('reshape', y, [x], (g) => [asShape(g, x.shape)]);
}

/** Like reshape, but requires a viewable (contiguous) tensor, as torch.view does. */
export function view(x: Tensor, shape: readonly number[]): Tensor {
  assertTensor(x, 'view');
  if (!x.isContiguous)
    throw new Error(`view: tensor of shape ${fmt(x.shape)} with strides ${fmt(x.strides)} is not contiguous; use reshape()`);
  return reshape(x, shape);
}

export function flatten(x: Tensor, startDim = 0, endDim = -1): Tensor {
  const s = normDim(startDim, x.rank, 'flatten');
  const e = normDim(endDim, x.rank, 'flatten');
  if (x.rank === 0) return reshape(x, [1]);
  return reshape(x, [...x.shape.slice(0, s), sizeOf(x.shape.slice(s, e + 1)), ...x.shape.slice(e + 1)]);
}

export function permute(x: Tensor, dims: readonly number[]): Tensor {
  assertTensor(x, 'permute');
  if (dims.length !== x.rank) throw new RangeError(`permute: got ${dims.length} dims ${fmt(dims)} for a tensor of rank ${x.rank}`);
  const p = dims.map((d) => normDim(d, x.rank, 'permute'));
  if (new Set(p).size !== p.length) throw new RangeError(`permute: dims ${fmt(dims)} repeat an axis`);
  const y = viewOf(
    x,
    p.map((d) => x.shape[d]),
    p.map((d) => x.strides[d]),
    x.offset,
  );
  const inv = new Array<number>(p.length);
  p.forEach((d, i) => (inv[d] = i));
  return record('permute', y, [x], (g) => [
    viewOf(
      g,
      inv.map((d) => g.shape[d]),
      inv.map((d) => g.strides[d]),
      g.offset,
    ),
  ]);
}

export function transpose(x: Tensor, d0 = -2, d1 = -1): Tensor {
  const a = normDim(d0, x.rank, 'transpose');
  const b = normDim(d1, x.rank, 'transpose');
  const p = x.shape.map((_, i) => i);
  [p[a], p[b]] = [p[b], p[a]];
  return permute(x, p);
}

export function unsqueeze(x: Tensor, dim: number): Tensor {
  const d = normDim(dim, x.rank + 1, 'unsqueeze');
  const shape = [...x.shape];
  shape.splice(d, 0, 1);
  const strides = [...x.strides];
  strides.splice(d, 0, d < x.rank ? x.strides[d] * x.shape[d] : 1);
  const y = viewOf(x, shape, strides, x.offset);
  return record('unsqueeze', y, [x], (g) => [squeezeView(g, d)]);
}

function squeezeView(g: Tensor, d: number): Tensor {
  return viewOf(
    g,
    g.shape.filter((_, i) => i !== d),
    g.strides.filter((_, i) => i !== d),
    g.offset,
  );
}

export function squeeze(x: Tensor, dim?: number): Tensor {
  assertTensor(x, 'squeeze');
  const dims =
    dim === undefined
      ? x.shape.map((s, i) => (s === 1 ? i : -1)).filter((i) => i >= 0)
      : [normDim(dim, x.rank, 'squeeze')].filter((i) => x.shape[i] === 1);
  const y = viewOf(
    x,
    x.shape.filter((_, i) => !dims.includes(i)),
    x.strides.filter((_, i) => !dims.includes(i)),
    x.offset,
  );
  return record('squeeze', y, [x], (g) => [asShape(g, x.shape)]);
}

/** narrow(x, dim, start, length): a view of `length` entries along `dim`. */
export function narrow(x: Tensor, dim: number, start: number, length: number): Tensor {
  assertTensor(x, 'narrow');
  const d = normDim(dim, x.rank, 'narrow');
  const n = x.shape[d];
  if (start < 0) start += n;
  if (!Number.isInteger(start) || !Number.isInteger(length) || start < 0 || length < 0 || start + length > n) {
    throw new RangeError(`narrow: range [${start}, ${start + length}) is outside dim ${d} of size ${n} (shape ${fmt(x.shape)})`);
  }
  const shape = [...x.shape];
  shape[d] = length;
  const y = viewOf(x, shape, x.strides, x.offset + start * x.strides[d]);
  // The gradient is g inside the window and 0 elsewhere; the tape adds it into the window.
  return record('narrow', y, [x], (g) => [new SliceGrad(viewOf(g, g.shape, g.strides, g.offset), d, start)]);
}

/** slice(x, dim, start, end) with Python-style negative indices; step 1. */
export function slice(x: Tensor, dim: number, start = 0, end?: number): Tensor {
  const d = normDim(dim, x.rank, 'slice');
  const n = x.shape[d];
  let s = start < 0 ? start + n : start;
  let e = end === undefined ? n : end < 0 ? end + n : end;
  s = Math.min(Math.max(s, 0), n);
  e = Math.min(Math.max(e, s), n);
  return narrow(x, d, s, e - s);
}

/** expand to a broadcast shape (-1 keeps a dim); a stride-0 view. */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  assertTensor(x, 'expand');
  if (shape.length < x.rank) throw new RangeError(`expand: target ${fmt(shape)} has fewer dims than ${fmt(x.shape)}`);
  const lead = shape.length - x.rank;
  const outShape = shape.map((s, i) => (s === -1 ? (i >= lead ? x.shape[i - lead] : NaN) : s));
  const strides = outShape.map((s: number, i: number): number => {
    if (i < lead) return 0;
    const xs = x.shape[i - lead];
    if (xs === s) return x.strides[i - lead];
    if (xs === 1) return 0;
    throw new RangeError(`expand: cannot expand shape ${fmt(x.shape)} to ${fmt(shape)} (dim ${i}: ${xs} → ${s})`);
  });
  validateShape(outShape, 'expand');
  const y = viewOf(x, outShape, strides, x.offset);
  return record('expand', y, [x], (g) => [sumToShape(g, x.shape)]);
}

export function contiguous(x: Tensor): Tensor {
  assertTensor(x, 'contiguous');
  const y = x.isContiguous ? viewOf(x, x.shape, x.strides, x.offset) : contiguousCopy(x);
  return record('contiguous', y, [x], (g) => [viewOf(g, g.shape, g.strides, g.offset)]);
}

export function cat(xs: readonly Tensor[], dim = 0): Tensor {
  if (!Array.isArray(xs) || xs.length === 0) throw new RangeError('cat: expected a non-empty list of tensors');
  xs.forEach((t, i) => assertTensor(t, 'cat', `tensor ${i}`));
  const ref = xs[0];
  const d = normDim(dim, ref.rank, 'cat');
  for (const t of xs) {
    if (t.rank !== ref.rank || t.shape.some((s: number, i: number) => i !== d && s !== ref.shape[i]) || t.dtype !== ref.dtype) {
      throw new RangeError(`cat: tensors must match except in dim ${d}: got ${xs.map((u) => `${u.dtype}${fmt(u.shape)}`).join(', ')}`);
    }
  }
  const shape = [...ref.shape];
  shape[d] = xs.reduce((s, t) => s + t.shape[d], 0);
  const out = empty(shape, ref.dtype);
  const offsets: number[] = [];
  let off = 0;
  for (const t of xs) {
    offsets.push(off);
    copyInto(t, out, off * out.strides[d]);
    off += t.shape[d];
  }
  return record('cat', out, xs, (g) =>
    xs.map((t, i) => {
      const sub = [...g.shape];
      sub[d] = t.shape[d];
      return viewOf(g, sub, g.strides, g.offset + offsets[i] * g.strides[d]);
    }),
  );
}

export function stack(xs: readonly Tensor[], dim = 0): Tensor {
  if (!Array.isArray(xs) || xs.length === 0) throw new RangeError('stack: expected a non-empty list of tensors');
  const d = normDim(dim, xs[0].rank + 1, 'stack');
  return scope(() =>
    cat(
      xs.map((t) => unsqueeze(t, d)),
      d,
    ),
  );
}

/** Copies `src` into the window of `out` of `src`'s shape starting at element `offset`. */
function copyInto(src: Tensor, out: Tensor, offset: number): void {
  scope(() => mapInto({ name: 'copy', expr: 'in0', compute: computeType(src.dtype) }, [src], viewOf(out, src.shape, out.strides, offset)));
}

/** Zero padding: pads[i] = [before, after] for the last pads.length dims. */
export function pad(x: Tensor, pads: readonly [number, number][], value = 0): Tensor {
  assertTensor(x, 'pad');
  if (pads.length > x.rank) throw new RangeError(`pad: ${pads.length} pad pairs for a tensor of rank ${x.rank}`);
  const lead = x.rank - pads.length;
  const shape = x.shape.map((s, i) => (i < lead ? s : s + pads[i - lead][0] + pads[i - lead][1]));
  validateShape(shape, 'pad');
  const out = empty(shape, x.dtype);
  mapInto({ name: 'fill', expr: 's0', compute: computeType(x.dtype), scalars: [value] }, [], out);
  const offset = x.shape.reduce((o, _, i) => o + (i < lead ? 0 : pads[i - lead][0] * out.strides[i]), 0);
  copyInto(x, out, offset);
  return record('pad', out, [x], (g) => {
    return [contiguousCopy(viewOf(g, x.shape, g.strides, g.offset + offset))];
  });
}

/** A tensor sharing storage with `x` but cut from the graph. */
export function detach(x: Tensor): Tensor {
  assertTensor(x, 'detach');
  return viewOf(x, x.shape, x.strides, x.offset);
}
