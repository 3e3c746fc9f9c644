/**
 * NN ops through autograd: forward vs the float64 reference (src/cpu) and gradients vs float64
 * central differences of the same reference, via gradCheck, on shapes that are not tile
 * multiples. Tolerances (f32 GPU vs float64): forward and gradients atol 1e-4 + rtol 1e-3
 * (numpy.allclose convention, elementwise). The f16 round trip stays inside them because one
 * f16 rounding is ≤ 4.9e-4 relative. Also: bad-input errors name the op and the shapes.
 */
import { describe, expect, it } from 'vitest';
import * as C from '../../src/cpu/index.js';
import { gradCheck } from '../../src/autograd/gradcheck.js';
import { rope2dTables } from '../../src/nn/tables.js';
import { ones, ops, tensor, toArray } from '../../src/index.js';
import { requireFeature, sizeOf, useGpu } from '../helpers/setup.js';
import { randomData } from '../helpers/random.js';

useGpu();

const TOL = { atol: 1e-4, rtol: 1e-3 };
const inp = (shape: number[], seed: number, lo = -1, hi = 1) => ({ data: randomData(sizeOf(shape), seed, lo, hi), shape });

describe('matmul and linear', () => {
  it('2-D matmul [17, 13] · [13, 9]', async () => {
    const r = await gradCheck(
      ([a, b]) => ops.matmul(a, b),
      ([a, b]) => C.matmul(a, b),
      [inp([17, 13], 1), inp([13, 9], 2)],
      TOL,
    );
    expect(r.ok, r.message).toBe(true);
  });

  it('batched matmul with broadcast batch dims [2, 1, 5, 7] · [3, 7, 6]', async () => {
    const r = await gradCheck(
      ([a, b]) => ops.matmul(a, b),
      ([a, b]) => C.matmul(a, b),
      [inp([2, 1, 5, 7], 3), inp([3, 7, 6], 4)],
      TOL,
    );
    expect(r.ok, r.message).toBe(true);
  });

  it('1-D operands: [7]·[7, 5], [3, 5, 7]·[7], [7]·[7], [7]·[2, 7, 3]', async () => {
    for (const [sa, sb] of [
      [[7], [7, 5]],
      [[3, 5, 7], [7]],
      [[7], [7]],
      [[7], [2, 7, 3]],
    ]) {
      const r = await gradCheck(
        ([a, b]) => ops.matmul(a, b),
        ([a, b]) => C.matmul(a, b),
        [inp(sa, 5), inp(sb, 6)],
        TOL,
      );
      expect(r.ok, `${JSON.stringify(sa)}·${JSON.stringify(sb)}: ${r.message}`).toBe(true);
    }
  });

  it('transposed-view operand: transpose([7, 11])ᵀ · [7, 5] and [6, 7] · transpose([5, 7])', async () => {
    let r = await gradCheck(
      ([a, b]) => ops.matmul(ops.transpose(a, 0, 1), b),
      ([a, b]) => C.matmul(C.transpose(a, 0, 1), b),
      [inp([7, 11], 7), inp([7, 5], 8)],
      TOL,
    );
    expect(r.ok, r.message).toBe(true);
    r = await gradCheck(
      ([a, b]) => ops.matmul(a, ops.transpose(b, 0, 1)),
      ([a, b]) => C.matmul(a, C.transpose(b, 0, 1)),
      [inp([6, 7], 9), inp([5, 7], 10)],
      TOL,
    );
    expect(r.ok, r.message).toBe(true);
  });

  it('linear with bias on [2, 3, 7] → 5', async () => {
    const r = await gradCheck(
      ([x, w, b]) => ops.linear(x, w, b),
      ([x, w, b]) => C.linear(x, w, b),
      [inp([2, 3, 7], 11), inp([5, 7], 12), inp([5], 13)],
      TOL,
    );
    expect(r.ok, r.message).toBe(true);
  });

  it('linear with bias and {residual}', async () => {
    const r = await gradCheck(
      ([x, w, b, res]) => ops.linear(x, w, b, { residual: res }),
      ([x, w, b, res]) => C.add(C.linear(x, w, b), res),
      [inp([2, 3, 7], 14), inp([5, 7], 15), inp([5], 16), inp([2, 3, 5], 17)],
      TOL,
    );
    expect(r.ok, r.message).toBe(true);
  });
});

describe('softmax family and cross entropy', () => {
  for (const dim of [-1, 0]) {
    it(`softmax and logSoftmax over dim ${dim} of [5, 3, 7]`, async () => {
      const X = inp([5, 3, 7], 20 + dim, -3, 3);
      let r = await gradCheck(
        ([x]) => ops.softmax(x, dim),
        ([x]) => C.softmax(x, dim),
        [X],
        TOL,
      );
      expect(r.ok, `softmax: ${r.message}`).toBe(true);
      r = await gradCheck(
        ([x]) => ops.logSoftmax(x, dim),
        ([x]) => C.logSoftmax(x, dim),
        [X],
        TOL,
      );
      expect(r.ok, `logSoftmax: ${r.message}`).toBe(true);
    });
  }

  it('crossEntropy(logits [9, 5], labels as a JS array)', async () => {
    const labels = [0, 4, 2, 2, 1, 3, 4, 0, 1];
    const r = await gradCheck(
      ([x]) => ops.crossEntropy(x, labels),
      ([x]) => C.crossEntropy(x, labels),
      [inp([9, 5], 25, -2, 2)],
      TOL,
    );
    expect(r.ok, r.message).toBe(true);
  });
});

describe('normalisation', () => {
  it('layerNorm over [10] with weight and bias', async () => {
    const r = await gradCheck(
      ([x, w, b]) => ops.layerNorm(x, [10], w, b, 1e-5),
      ([x, w, b]) => C.layerNorm(x, [10], w, b, 1e-5),
      [inp([3, 4, 10], 30, -2, 2), inp([10], 31, 0.5, 1.5), inp([10], 32)],
      TOL,
    );
    expect(r.ok, r.message).toBe(true);
  });

  it('layerNorm over [4, 10] without weight/bias', async () => {
    const r = await gradCheck(
      ([x]) => ops.layerNorm(x, [4, 10]),
      ([x]) => C.layerNorm(x, [4, 10]),
      [inp([3, 4, 10], 33, -2, 2)],
      TOL,
    );
    expect(r.ok, r.message).toBe(true);
  });

  it('rmsNorm over [11] with weight', async () => {
    const r = await gradCheck(
      ([x, w]) => ops.rmsNorm(x, [11], w, 1e-6),
      ([x, w]) => C.rmsNorm(x, [11], w, 1e-6),
      [inp([2, 3, 11], 34, -2, 2), inp([11], 35, 0.5, 1.5)],
      TOL,
    );
    expect(r.ok, r.message).toBe(true);
  });
});

describe('attention and rope', () => {
  it('scaledDotProductAttention on [1, 2, 9, 8] with q ≠ k ≠ v', async () => {
    const shape = [1, 2, 9, 8];
    const r = await gradCheck(
      ([q, k, v]) => ops.scaledDotProductAttention(q, k, v),
      ([q, k, v]) => C.scaledDotProductAttention(q, k, v),
      [inp(shape, 40, -2, 2), inp(shape, 41, -2, 2), inp(shape, 42)],
      TOL,
    );
    expect(r.ok, r.message).toBe(true);
  });

  it('rope with rope2dTables(8, 3): x [2, 2, 9, 8]', async () => {
    const { cos, sin } = rope2dTables(8, 3);
    const cosT = tensor(cos, [9, 8]);
    const sinT = tensor(sin, [9, 8]);
    const cosN = C.nd(cos, [9, 8]);
    const sinN = C.nd(sin, [9, 8]);
    const r = await gradCheck(
      ([x]) => ops.rope(x, cosT, sinT),
      ([x]) => C.rope(x, cosN, sinN),
      [inp([2, 2, 9, 8], 43, -2, 2)],
      TOL,
    );
    cosT.dispose();
    sinT.dispose();
    expect(r.ok, r.message).toBe(true);
  });
});

describe('lookups, layouts, pad, dropout, cast', () => {
  it('embedding: i32 ids [2, 4] with repeats into table [5, 6]; gradient for the table only', async () => {
    const ids = [1, 3, 1, 4, 0, 3, 3, 1];
    const idsT = tensor(Int32Array.from(ids), [2, 4]);
    // The ids are a gradCheck input only for the CPU side (requiresGrad false); the GPU side
    // uses the i32 tensor built above.
    const r = await gradCheck(
      ([, table]) => ops.embedding(idsT, table),
      ([idx, table]) => C.embedding(idx, table),
      [{ data: ids, shape: [2, 4], requiresGrad: false }, inp([5, 6], 50)],
      TOL,
    );
    idsT.dispose();
    expect(r.ok, r.message).toBe(true);
    expect(r.grads[0]).toBeNull();
  });

  it('indexSelect along dims 1 and 0 with repeated indices', async () => {
    const cpuIndexSelect = (x: C.NDArray, dim: number, idx: number[]): C.NDArray =>
      C.cat(
        idx.map((i) => C.narrow(x, dim, i, 1)),
        dim,
      );
    for (const [dim, idx] of [
      [1, [3, 0, 3, 4]],
      [0, [2, 2, 0]],
    ] as [number, number[]][]) {
      const idxT = tensor(Int32Array.from(idx), [idx.length]);
      const r = await gradCheck(
        ([x]) => ops.indexSelect(x, dim, idxT),
        ([x]) => cpuIndexSelect(x, dim, idx),
        [inp([3, 5, 7], 51 + dim)],
        TOL,
      );
      idxT.dispose();
      expect(r.ok, `dim ${dim}: ${r.message}`).toBe(true);
    }
  });

  it('patchify [2, 3, 4, 6] with p = 2 and unpatchify back (square and 2×3 grids)', async () => {
    let r = await gradCheck(
      ([x]) => ops.patchify(x, 2),
      ([x]) => C.patchify(x, 2),
      [inp([2, 3, 4, 6], 60)],
      TOL,
    );
    expect(r.ok, `patchify: ${r.message}`).toBe(true);
    r = await gradCheck(
      ([x]) => ops.unpatchify(x, 2, 3, 2, 3),
      ([x]) => C.unpatchify(x, 2, 3, [2, 3]),
      [inp([2, 6, 12], 61)],
      TOL,
    );
    expect(r.ok, `unpatchify 2×3: ${r.message}`).toBe(true);
    r = await gradCheck(
      ([x]) => ops.unpatchify(x, 2, 3),
      ([x]) => C.unpatchify(x, 2, 3),
      [inp([1, 4, 12], 62)],
      TOL,
    );
    expect(r.ok, `unpatchify square: ${r.message}`).toBe(true);
  });

  it('pad the last two dims of [2, 3, 5] by [[1, 2], [0, 3]] with value 0.5', async () => {
    const pads: [number, number][] = [
      [1, 2],
      [0, 3],
    ];
    const cpuPad = (x: C.NDArray): C.NDArray => {
      const [A, B, Cc] = x.shape;
      const Bo = B + 3;
      const Co = Cc + 3;
      const out = C.ndFull([A, Bo, Co], 0.5);
      for (let a = 0; a < A; a++)
        for (let b = 0; b < B; b++) for (let c = 0; c < Cc; c++) out.data[(a * Bo + b + 1) * Co + c] = x.data[(a * B + b) * Cc + c];
      return out;
    };
    const r = await gradCheck(
      ([x]) => ops.pad(x, pads, 0.5),
      ([x]) => cpuPad(x),
      [inp([2, 3, 5], 63)],
      TOL,
    );
    expect(r.ok, r.message).toBe(true);
  });

  it('dropout p = 0.3 with a fixed seed: the mask read from dropout(ones) is applied by the CPU reference', async () => {
    const shape = [5, 13];
    const seed = 1234;
    const p = 0.3;
    const o = ones(shape);
    const mask = Float64Array.from(await toArray(ops.dropout(o, p, true, seed)));
    o.dispose();
    const zerosKept = mask.filter((v) => v === 0).length;
    // The mask holds only 0 and 1/(1 − p), and drops some but not all entries.
    expect(mask.every((v) => v === 0 || Math.abs(v - 1 / (1 - p)) < 1e-6)).toBe(true);
    expect(zerosKept).toBeGreaterThan(0);
    expect(zerosKept).toBeLessThan(mask.length);
    const M = { data: mask, shape };
    const r = await gradCheck(
      ([x]) => ops.dropout(x, p, true, seed),
      ([x]) => C.mul(x, M),
      [inp(shape, 64)],
      TOL,
    );
    expect(r.ok, r.message).toBe(true);
  });

  it('cast f32 → f16 → f32 (when the adapter has shader-f16)', async (ctx) => {
    requireFeature(ctx, 'shader-f16');
    const r = await gradCheck(
      ([x]) => ops.cast(ops.cast(x, 'f16'), 'f32'),
      ([x]) => x,
      [inp([7, 9], 65, -2, 2)],
      TOL,
    );
    expect(r.ok, r.message).toBe(true);
  });
});

describe('bad inputs name the op and the shapes', () => {
  const t = (shape: number[]) => tensor(new Float32Array(sizeOf(shape)), shape);

  it('matmul of incompatible shapes', () => {
    expect(() => ops.matmul(t([2, 3]), t([4, 5]))).toThrow(/matmul: shapes \[2, 3\] and \[4, 5\] cannot be multiplied/);
    expect(() => ops.matmul(t([2, 2, 3]), t([3, 3, 4]))).toThrow(/matmul.*\[2\].*\[3\]/);
  });

  it('linear with a wrong weight', () => {
    expect(() => ops.linear(t([2, 7]), t([5, 6]))).toThrow(/linear: input \[2, 7\] does not end in 6 \(weight \[5, 6\]\)/);
    expect(() => ops.linear(t([2, 7]), t([5, 7, 1]))).toThrow(/linear: weight must be \[out, in\], got \[5, 7, 1\]/);
  });

  it('layerNorm with a wrong normalizedShape', () => {
    expect(() => ops.layerNorm(t([2, 7]), [5])).toThrow(/layerNorm: normalizedShape \[5\] must match the trailing dims of input \[2, 7\]/);
  });

  it('softmax with an out-of-range dim', () => {
    expect(() => ops.softmax(t([2, 7]), 2)).toThrow(/softmax: dim 2 is out of range for a tensor of rank 2/);
    expect(() => ops.logSoftmax(t([2, 7]), -3)).toThrow(/logSoftmax: dim -3 is out of range/);
  });

  it('crossEntropy with a label out of range', () => {
    expect(() => ops.crossEntropy(t([3, 5]), [0, 1, 5])).toThrow(/crossEntropy: label 5 at index 2 is outside \[0, 5\)/);
    expect(() => ops.crossEntropy(t([3, 5]), [0, 1])).toThrow(/crossEntropy: labels \[2\] must be \[3\] for logits \[3, 5\]/);
  });

  it('backward on a non-scalar without a gradient', () => {
    const x = tensor(new Float32Array(6), [2, 3], { requiresGrad: true });
    const y = ops.mul(x, 2);
    expect(() => y.backward()).toThrow(/backward: a gradient argument is needed for a non-scalar output of shape \[2, 3\]/);
  });

  it('backward on a tensor that does not require grad', () => {
    const y = ops.sum(t([2, 3]));
    expect(() => y.backward()).toThrow(/backward: the tensor \[\] does not require grad/);
  });
});
