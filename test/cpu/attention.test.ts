import { describe, expect, it } from 'vitest';
import {
  attentionWeights,
  compareArrays,
  matmul,
  mulScalar,
  nd,
  ndRandn,
  rope,
  rotatePairs,
  scaledDotProductAttention,
  softmax,
  transpose,
} from '../../src/cpu/index.js';

/** Attention written as scalar loops, sharing no code with the oracle. */
function loopAttention(
  q: Float64Array,
  k: Float64Array,
  v: Float64Array,
  bh: number,
  nq: number,
  nk: number,
  d: number,
  dv: number,
  scale: number,
) {
  const out = new Float64Array(bh * nq * dv);
  for (let h = 0; h < bh; h++)
    for (let i = 0; i < nq; i++) {
      const s = new Array<number>(nk);
      for (let j = 0; j < nk; j++) {
        let dot = 0;
        for (let c = 0; c < d; c++) dot += q[(h * nq + i) * d + c] * k[(h * nk + j) * d + c];
        s[j] = dot * scale;
      }
      const m = Math.max(...s);
      const e = s.map((x) => Math.exp(x - m));
      const z = e.reduce((a, b) => a + b, 0);
      for (let c = 0; c < dv; c++) {
        let acc = 0;
        for (let j = 0; j < nk; j++) acc += (e[j] / z) * v[(h * nk + j) * dv + c];
        out[(h * nq + i) * dv + c] = acc;
      }
    }
  return out;
}

describe('scaledDotProductAttention', () => {
  it('equals softmax(Q Kᵀ s) V built from matmul/softmax, and a scalar-loop version', () => {
    const [b, h, n, d] = [2, 3, 5, 4];
    const q = ndRandn([b, h, n, d], 1);
    const k = ndRandn([b, h, n, d], 2);
    const v = ndRandn([b, h, n, d], 3);
    const out = scaledDotProductAttention(q, k, v);
    expect(out.shape).toEqual([b, h, n, d]);
    const explicit = matmul(softmax(mulScalar(matmul(q, transpose(k, -2, -1)), 1 / Math.sqrt(d)), -1), v);
    expect(compareArrays(out.data, explicit.data, { atol: 0, rtol: 0 }).ok).toBe(true);
    const loops = loopAttention(q.data, k.data, v.data, b * h, n, n, d, d, 1 / Math.sqrt(d));
    const r = compareArrays(out.data, loops, { atol: 1e-14, rtol: 1e-12, shape: out.shape });
    expect(r.ok, r.message).toBe(true);
  });

  it('cross-attention with Nq != Nk, Dv != D and explicit scale', () => {
    const q = ndRandn([1, 2, 3, 4], 4);
    const k = ndRandn([1, 2, 6, 4], 5);
    const v = ndRandn([1, 2, 6, 5], 6);
    const out = scaledDotProductAttention(q, k, v, 0.3);
    expect(out.shape).toEqual([1, 2, 3, 5]);
    const loops = loopAttention(q.data, k.data, v.data, 2, 3, 6, 4, 5, 0.3);
    const r = compareArrays(out.data, loops, { atol: 1e-14, rtol: 1e-12 });
    expect(r.ok, r.message).toBe(true);
    const w = attentionWeights(q, k, 0.3);
    expect(w.shape).toEqual([1, 2, 3, 6]);
    expect(() => scaledDotProductAttention(q, ndRandn([1, 2, 6, 3], 0), v)).toThrow(/head dims/);
  });

  it('uniform attention when all keys are equal', () => {
    const q = ndRandn([1, 1, 2, 2], 8);
    const k = nd([1, 1, 1, 1, 1, 1], [1, 1, 3, 2]);
    const v = nd([1, 0, 0, 1, 2, 2], [1, 1, 3, 2]);
    const out = scaledDotProductAttention(q, k, v);
    for (let i = 0; i < 2; i++) {
      expect(out.data[i * 2]).toBeCloseTo(1, 15);
      expect(out.data[i * 2 + 1]).toBeCloseTo(1, 15);
    }
  });

  it('N=256: every output row is a convex combination of v rows', () => {
    const q = ndRandn([1, 4, 256, 64], 9);
    const o = scaledDotProductAttention(q, q, q);
    // Softmax weights are positive and sum to 1, so each output lies within v's column range.
    for (let h = 0; h < 4; h++)
      for (let d = 0; d < 64; d += 9) {
        let lo = Infinity;
        let hi = -Infinity;
        for (let n = 0; n < 256; n++) {
          const v = q.data[(h * 256 + n) * 64 + d];
          lo = Math.min(lo, v);
          hi = Math.max(hi, v);
        }
        for (let n = 0; n < 256; n += 17) {
          const v = o.data[(h * 256 + n) * 64 + d];
          expect(v).toBeGreaterThanOrEqual(lo - 1e-12);
          expect(v).toBeLessThanOrEqual(hi + 1e-12);
        }
      }
  });
});

describe('rope', () => {
  it('rotates interleaved pairs', () => {
    expect(Array.from(rotatePairs(nd([1, 2, 3, 4], [1, 4])).data)).toEqual([-2, 1, -4, 3]);
  });

  it('by hand: each pair is rotated by its angle', () => {
    // N = 2 positions, D = 4 (two pairs); angles theta[n][pair]
    const theta = [
      [0.1, 0.2],
      [0.3, 0.4],
    ];
    const cosA: number[] = [];
    const sinA: number[] = [];
    for (const row of theta)
      for (const t of row) {
        cosA.push(Math.cos(t), Math.cos(t));
        sinA.push(Math.sin(t), Math.sin(t));
      }
    const x = nd([1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 4]);
    const y = rope(x, nd(cosA, [2, 4]), nd(sinA, [2, 4]));
    for (let n = 0; n < 2; n++)
      for (let p = 0; p < 2; p++) {
        const [a, b] = [x.data[n * 4 + 2 * p], x.data[n * 4 + 2 * p + 1]];
        const t = theta[n][p];
        expect(y.data[n * 4 + 2 * p]).toBeCloseTo(a * Math.cos(t) - b * Math.sin(t), 15);
        expect(y.data[n * 4 + 2 * p + 1]).toBeCloseTo(b * Math.cos(t) + a * Math.sin(t), 15);
      }
    expect(() => rope(x, nd(cosA, [4, 2]), nd(sinA, [2, 4]))).toThrow(/cos must be/);
  });
});
