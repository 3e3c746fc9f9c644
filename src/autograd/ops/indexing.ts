/** Embedding lookups, index selection, resampling, patchify and dropout. */
import { embeddingBackwardInto, embeddingInto, indexSelectBackwardInto, indexSelectInto } from '../../kernels/gather.js';
import { interpolateInto, type ResampleMode } from '../../kernels/resample.js';
import { asShape, bernoulli, contiguousCopy } from '../../tensor/creation.js';
import { fmt, normDim, sizeOf } from '../../core/shape.js';
import { scope } from '../../tensor/scope.js';
import { empty, type Tensor } from '../../tensor/tensor.js';
import { isGradEnabled, record } from '../tape.js';
import { cast } from './elementwise.js';
import { map } from './map.js';
import { permute, reshape } from './shape.js';
import { assertFloat, assertTensor } from './util.js';

/** table[ids]: ids i32 of any shape → [...ids.shape, D]. */
export function embedding(ids: Tensor, table: Tensor): Tensor {
  assertTensor(ids, 'embedding', 'ids');
  assertTensor(table, 'embedding', 'table');
  if (table.rank !== 2) throw new RangeError(`embedding: table must be [V, D], got ${fmt(table.shape)}`);
  if (ids.dtype !== 'i32') {
    // Integer-valued ids of another dtype (tensor([…]) is f32 by default) are converted.
    return scope(() => embedding(cast(ids, 'i32'), table));
  }
  const [, D] = table.shape;
  const n = ids.size;
  return scope(() => {
    const flat = asShape(ids, [n]);
    const out2 = empty([n, D], 'f32');
    embeddingInto(flat, table, out2);
    return record(
      'embedding',
      asShape(out2, [...ids.shape, D]),
      [null, table],
      (g, [idsSaved]) => {
        const dt = empty(table.shape, 'f32');
        embeddingBackwardInto(idsSaved, asShape(g, [n, D]), dt);
        return [null, dt];
      },
      [flat],
    );
  });
}

/** x.index_select(dim, idx) with idx an i32 vector. */
export function indexSelect(x: Tensor, dim: number, idx: Tensor): Tensor {
  assertTensor(x, 'indexSelect');
  assertTensor(idx, 'indexSelect', 'index');
  if (idx.dtype !== 'i32' || idx.rank !== 1)
    throw new TypeError(`indexSelect: index must be a 1-D i32 tensor, got ${idx.dtype}${fmt(idx.shape)}`);
  const d = normDim(dim, x.rank, 'indexSelect');
  const layout = { outer: sizeOf(x.shape.slice(0, d)), n: x.shape[d], inner: sizeOf(x.shape.slice(d + 1)) };
  const shape = [...x.shape];
  shape[d] = idx.shape[0];
  const out = empty(shape, x.dtype);
  scope(() => indexSelectInto(x.isContiguous ? x : contiguousCopy(x), layout, idx, out));
  return record(
    'indexSelect',
    out,
    [x, null],
    (g, [is]) => {
      const gc = g.isContiguous ? g : contiguousCopy(g);
      const dx = empty(x.shape, 'f32');
      indexSelectBackwardInto(gc, layout, is, dx);
      return [dx, null];
    },
    [idx],
  );
}

export interface InterpolateOptions {
  mode?: ResampleMode;
  alignCorners?: boolean;
  antialias?: boolean;
}

/** Resizes [B, C, H, W] to `size` = [h, w] (PyTorch semantics). Forward only. */
export function interpolate(x: Tensor, sizeArg: readonly [number, number] | number[] | number, opts: InterpolateOptions = {}): Tensor {
  assertTensor(x, 'interpolate');
  const size = typeof sizeArg === 'number' ? [sizeArg, sizeArg] : sizeArg;
  assertFloat(x, 'interpolate');
  if (x.rank !== 4) throw new RangeError(`interpolate: input must be [B, C, H, W], got ${fmt(x.shape)}`);
  if (size.length !== 2 || size.some((s) => !Number.isInteger(s) || s <= 0))
    throw new RangeError(`interpolate: size must be two positive integers, got ${JSON.stringify(size)}`);
  if (isGradEnabled() && x.requiresGrad)
    throw new Error('interpolate: backward is not implemented (forward only); call it on a tensor that does not require grad');
  const out = empty([x.shape[0], x.shape[1], size[0], size[1]], 'f32');
  interpolateInto(x, out, opts.mode ?? 'bilinear', { alignCorners: opts.alignCorners ?? false, antialias: opts.antialias ?? false });
  return out;
}

/** [B, C, H, W] → [B, (H/p)·(W/p), p·p·C] with index (pi·p + pj)·C + c inside a patch (RAE layout). */
export function patchify(x: Tensor, p: number): Tensor {
  assertTensor(x, 'patchify');
  if (x.rank !== 4) throw new RangeError(`patchify: input must be [B, C, H, W], got ${fmt(x.shape)}`);
  const [B, C, H, W] = x.shape;
  if (!Number.isInteger(p) || p <= 0 || H % p || W % p) throw new RangeError(`patchify: patch ${p} must divide H=${H} and W=${W}`);
  const h = H / p;
  const w = W / p;
  return scope(() => reshape(permute(reshape(x, [B, C, h, p, w, p]), [0, 2, 4, 3, 5, 1]), [B, h * w, p * p * C]));
}

/** Inverse of patchify: [B, h·w, p·p·C] → [B, C, h·p, w·p]. */
export function unpatchify(x: Tensor, p: number, C: number, h?: number, w?: number): Tensor {
  assertTensor(x, 'unpatchify');
  if (x.rank !== 3 || x.shape[2] !== p * p * C) throw new RangeError(`unpatchify: input must be [B, N, ${p * p * C}], got ${fmt(x.shape)}`);
  const [B, N] = x.shape;
  const hh = h ?? Math.round(Math.sqrt(N));
  const ww = w ?? N / hh;
  if (hh * ww !== N) throw new RangeError(`unpatchify: ${N} tokens do not form a ${hh}×${ww} grid`);
  return scope(() => reshape(permute(reshape(x, [B, hh, ww, p, p, C]), [0, 5, 1, 3, 2, 4]), [B, C, hh * p, ww * p]));
}

/** Inverted dropout: zero with probability p, scale survivors by 1/(1−p). Identity when !training. */
export function dropout(x: Tensor, p: number, training = true, seed?: number): Tensor {
  assertTensor(x, 'dropout');
  if (!(p >= 0 && p < 1)) throw new RangeError(`dropout: p must be in [0, 1), got ${p}`);
  if (!training || p === 0) return x;
  return scope(() => {
    const keep = bernoulli(x.shape, 1 - p, seed === undefined ? {} : { seed });
    const y = map('dropout', [x, keep], 'in0 * in1 * s0', { scalars: [1 / (1 - p)], dtype: x.dtype });
    return record(
      'dropout',
      y,
      [x],
      (g, [m]) => [map('dropout_grad', [g, m], 'in0 * in1 * s0', { scalars: [1 / (1 - p)], dtype: g.dtype })],
      [keep],
    );
  });
}
