/** Fused attention (flash style, O(N) memory forward and backward) and rotary embeddings. */
import { attentionBackward, attentionForward } from '../../kernels/attention.js';
import { ropeInto } from '../../kernels/rope.js';
import { asShape } from '../../tensor/creation.js';
import { fmt } from '../../core/shape.js';
import type { View } from '../../kernels/view.js';
import { scope } from '../../tensor/scope.js';
import { empty, type Tensor } from '../../tensor/tensor.js';
import { record } from '../tape.js';
import { assertFloat, assertTensor } from './util.js';

export interface AttentionOptions {
  /** Softmax temperature; default 1/√D. */
  scale?: number;
  /**
   * 'bhnd' (default): output [B, H, N, D]. 'merged': output [B, N, H·D], heads already merged
   * for the output projection — the kernel writes that layout directly, saving a copy forward
   * and one backward.
   */
  layout?: 'bhnd' | 'merged';
}

/** softmax(q·kᵀ·scale)·v over [B, H, N, D] without an N×N tensor. q/k/v may be strided views. */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions = {}): Tensor {
  for (const [t, n] of [
    [q, 'q'],
    [k, 'k'],
    [v, 'v'],
  ] as const) {
    assertTensor(t, 'scaledDotProductAttention', n);
    assertFloat(t, 'scaledDotProductAttention');
    if (t.rank !== 4) throw new RangeError(`scaledDotProductAttention: ${n} must be [B, H, N, D], got ${fmt(t.shape)}`);
  }
  const [B, H, Nq, D] = q.shape;
  if (k.shape[0] !== B || k.shape[1] !== H || k.shape[3] !== D || v.shape[0] !== B || v.shape[1] !== H || v.shape[2] !== k.shape[2]) {
    throw new RangeError(`scaledDotProductAttention: incompatible shapes q ${fmt(q.shape)}, k ${fmt(k.shape)}, v ${fmt(v.shape)}`);
  }
  if (v.shape[3] !== D) throw new RangeError(`scaledDotProductAttention: v head dim ${v.shape[3]} must equal q's ${D}`);
  const scale = opts.scale ?? 1 / Math.sqrt(D);
  const merged = opts.layout === 'merged';
  const out0 = merged ? empty([B, Nq, H * D], 'f32') : empty([B, H, Nq, D], 'f32');
  // The [B, N, H·D] buffer seen as [B, H, N, D]: the kernels take any strides.
  const asHeads = (t: Tensor): View =>
    merged
      ? {
          buffer: t.buffer,
          dtype: t.dtype,
          shape: [B, H, Nq, D],
          strides: [t.strides[0], D * t.strides[2], t.strides[1], t.strides[2]],
          offset: t.offset,
        }
      : t;
  // The log-sum-exp rows live only as long as the node that saves them.
  return scope(() => {
    const lse = empty([B, H, Nq], 'f32');
    attentionForward(q, k, v, asHeads(out0), lse, scale);
    return record(
      'attention',
      out0,
      [q, k, v],
      (g, [qs, ks, vs, os, ls]) => {
        const dq = empty(q.shape, 'f32');
        const dk = empty(k.shape, 'f32');
        const dv = empty(v.shape, 'f32');
        attentionBackward(qs, ks, vs, asHeads(os), ls, asHeads(g), dq, dk, dv, scale);
        return [dq, dk, dv];
      },
      [q, k, v, out0, lse],
    );
  });
}

/** Rotary embedding on interleaved pairs; x: [..., N, D], cos/sin: [N, D]. */
export function rope(x: Tensor, cos: Tensor, sin: Tensor): Tensor {
  assertTensor(x, 'rope');
  assertFloat(x, 'rope');
  const N = x.shape[x.rank - 2];
  const D = x.shape[x.rank - 1];
  if (x.rank < 2 || D % 2 !== 0) throw new RangeError(`rope: input must be [..., N, D] with even D, got ${fmt(x.shape)}`);
  for (const [t, n] of [
    [cos, 'cos'],
    [sin, 'sin'],
  ] as const) {
    if (t.rank !== 2 || t.shape[0] !== N || t.shape[1] !== D) throw new RangeError(`rope: ${n} must be [${N}, ${D}], got ${fmt(t.shape)}`);
  }
  // Contiguous copies of strided tables live only as long as the node that saves them.
  return scope(() => {
    const c = cos.isContiguous ? cos : asShape(cos, cos.shape);
    const s = sin.isContiguous ? sin : asShape(sin, sin.shape);
    const y = empty(x.shape, 'f32');
    ropeInto(x, c, s, y);
    return record(
      'rope',
      y,
      [x],
      (g, [cs, ss]) => {
        const dx = empty(x.shape, 'f32');
        ropeInto(g, cs, ss, dx, true);
        return [dx];
      },
      [c, s],
    );
  });
}
