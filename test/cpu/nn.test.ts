import { describe, expect, it } from 'vitest';
import { crossEntropy, embedding, layerNorm, logSoftmax, nd, ndRandn, ndToNested, rmsNorm, softmax, sumAll } from '../../src/cpu/index.js';

describe('softmax family', () => {
  it('softmax of [1, 2, 3]', () => {
    const z = Math.E + Math.E ** 2 + Math.E ** 3;
    const s = softmax(nd([1, 2, 3], [3]), 0);
    const expected = [Math.E / z, Math.E ** 2 / z, Math.E ** 3 / z]; // 0.0900, 0.2447, 0.6652
    s.data.forEach((v, i) => expect(v).toBeCloseTo(expected[i], 15));
    expect(s.data[2]).toBeCloseTo(0.6652409557748219, 15);
  });

  it('softmax along a middle axis, and is shift invariant / overflow safe', () => {
    const x = ndRandn([2, 5, 3], 7);
    const s = softmax(x, 1);
    for (let a = 0; a < 2; a++)
      for (let c = 0; c < 3; c++) {
        let t = 0;
        for (let b = 0; b < 5; b++) t += s.data[a * 15 + b * 3 + c];
        expect(t).toBeCloseTo(1, 14);
      }
    const big = softmax(nd([1000, 1001, 1002], [3]), -1);
    const small = softmax(nd([0, 1, 2], [3]), -1);
    big.data.forEach((v, i) => expect(v).toBeCloseTo(small.data[i], 15));
  });

  it('logSoftmax = log(softmax), stable for large inputs', () => {
    const x = nd([1, 2, 3, -1, 0, 1], [2, 3]);
    const ls = logSoftmax(x, 1);
    const s = softmax(x, 1);
    ls.data.forEach((v, i) => expect(v).toBeCloseTo(Math.log(s.data[i]), 14));
    const far = logSoftmax(nd([0, -2000], [2]), 0);
    expect(far.data[0]).toBe(0);
    expect(far.data[1]).toBe(-2000);
  });

  it('crossEntropy is the mean NLL of the labels', () => {
    const logits = nd([1, 2, 3, 1, 1, 1], [2, 3]);
    const ce = crossEntropy(logits, [2, 0]);
    const z = Math.E + Math.E ** 2 + Math.E ** 3;
    const expected = (-(3 - Math.log(z)) + Math.log(3)) / 2;
    expect(ce.shape).toEqual([]);
    expect(ce.data[0]).toBeCloseTo(expected, 15);
    expect(() => crossEntropy(logits, [3, 0])).toThrow(/out of range/);
  });
});

describe('normalisation', () => {
  it('layerNorm of a known vector', () => {
    // [1, 2, 3, 4]: mean 2.5, biased var 1.25
    const y = layerNorm(nd([1, 2, 3, 4], [1, 4]), [4], undefined, undefined, 0);
    const s = Math.sqrt(1.25);
    expect(Array.from(y.data)).toEqual([-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s]);
    const w = nd([1, 2, 3, 4], [4]);
    const b = nd([0, 0, 0, 1], [4]);
    const yw = layerNorm(nd([1, 2, 3, 4], [4]), [4], w, b, 1e-5);
    const inv = 1 / Math.sqrt(1.25 + 1e-5);
    [-1.5, -0.5, 0.5, 1.5].forEach((d, i) => expect(yw.data[i]).toBeCloseTo(d * inv * w.data[i] + b.data[i], 15));
  });

  it('layerNorm over two trailing dims normalises each group', () => {
    const x = ndRandn([3, 2, 4], 11);
    const y = layerNorm(x, [2, 4], undefined, undefined, 0);
    for (let g = 0; g < 3; g++) {
      const grp = Array.from(y.data.subarray(g * 8, g * 8 + 8));
      const mu = grp.reduce((a, v) => a + v, 0) / 8;
      const v = grp.reduce((a, e) => a + (e - mu) ** 2, 0) / 8;
      expect(mu).toBeCloseTo(0, 14);
      expect(v).toBeCloseTo(1, 13);
    }
    expect(() => layerNorm(x, [3])).toThrow(/does not match/);
  });

  it('rmsNorm', () => {
    // [3, 4]: mean square 12.5
    const y = rmsNorm(nd([3, 4], [2]), [2], nd([1, 10], [2]), 0);
    const r = Math.sqrt(12.5);
    expect(Array.from(y.data)).toEqual([3 / r, 40 / r]);
    const y2 = rmsNorm(nd([3, 4, 0, 0], [2, 2]), [2], undefined, 1e-6);
    expect(y2.data[0]).toBeCloseTo(3 / Math.sqrt(12.5 + 1e-6), 15);
    expect(Array.from(y2.data.subarray(2))).toEqual([0, 0]);
  });
});

describe('embedding', () => {
  it('gathers rows for ids of any shape', () => {
    const table = nd([0, 1, 10, 11, 20, 21], [3, 2]);
    expect(ndToNested(embedding([2, 0], table))).toEqual([
      [20, 21],
      [0, 1],
    ]);
    const e = embedding(nd([1, 1, 2, 0], [2, 2]), table);
    expect(e.shape).toEqual([2, 2, 2]);
    expect(sumAll(e)).toBe(10 + 11 + 10 + 11 + 20 + 21 + 0 + 1);
    expect(() => embedding([3], table)).toThrow(/out of range/);
  });
});
