import { describe, expect, it } from 'vitest';
import { argmax, max, mean, min, nd, ndToNested, sum, variance } from '../../src/cpu/index.js';

// x[i][j][k] = 100 i + 10 j + k for shape [2, 3, 4]
const x = nd(
  Array.from({ length: 24 }, (_, f) => 100 * Math.floor(f / 12) + 10 * Math.floor((f % 12) / 4) + (f % 4)),
  [2, 3, 4],
);

describe('reductions', () => {
  it('sum over one axis, negative axes and keepdim', () => {
    const s = sum(x, 2);
    expect(s.shape).toEqual([2, 3]);
    expect(ndToNested(s)).toEqual([
      [6, 46, 86],
      [406, 446, 486],
    ]);
    const sk = sum(x, -1, { keepdim: true });
    expect(sk.shape).toEqual([2, 3, 1]);
    expect(Array.from(sk.data)).toEqual(Array.from(s.data));
  });

  it('sum over several axes and over everything', () => {
    const s = sum(x, [0, 2]);
    expect(s.shape).toEqual([3]);
    // sum over i,k of 100i + 10j + k = 4*100 + 2*4*10j + 2*6
    expect(Array.from(s.data)).toEqual([412, 492, 572]);
    const all = sum(x);
    expect(all.shape).toEqual([]);
    expect(all.data[0]).toBe(100 * 12 + 10 * 8 * 3 + 6 * 6);
    expect(sum(x, []).data[0]).toBe(all.data[0]); // torch: dim=[] reduces all
    expect(sum(x, undefined, { keepdim: true }).shape).toEqual([1, 1, 1]);
  });

  it('mean, max, min', () => {
    expect(ndToNested(mean(x, [1, 2]))).toEqual([10 + 1.5, 110 + 1.5]); // mean of 10j is 10, of k is 1.5
    expect(ndToNested(max(x, 1))).toEqual([
      [20, 21, 22, 23],
      [120, 121, 122, 123],
    ]);
    expect(ndToNested(min(x, [0, 1]))).toEqual([0, 1, 2, 3]);
    expect(Number.isNaN(max(nd([1, NaN, 3], [3])).data[0])).toBe(true);
  });

  it('variance with torch correction semantics', () => {
    const v = nd([1, 2, 3, 4], [4]);
    // mean 2.5, squared deviations sum 5
    expect(variance(v).data[0]).toBeCloseTo(5 / 3, 15);
    expect(variance(v, 0, { correction: 0 }).data[0]).toBe(1.25);
    expect(variance(nd([5], [1])).data[0]).toBeNaN(); // 0/0 as in torch
    const vx = variance(x, [0, 2], { keepdim: true });
    expect(vx.shape).toEqual([1, 3, 1]);
    // over i in {0,1} (values 0/100) and k in 0..3: deviations independent; population var = 2500 + 1.25
    for (const e of vx.data) expect(e).toBeCloseTo(((2500 + 1.25) * 8) / 7, 10);
  });

  it('rejects duplicate or out-of-range axes', () => {
    expect(() => sum(x, [1, -2])).toThrow(/duplicate/);
    expect(() => sum(x, 3)).toThrow(/out of range/);
  });

  it('argmax returns first index of the max, as floats', () => {
    const a = nd([1, 3, 3, 0, 9, 2], [2, 3]);
    expect(ndToNested(argmax(a, 1))).toEqual([1, 1]); // ties -> first
    expect(ndToNested(argmax(a, 0))).toEqual([0, 1, 0]);
    expect(argmax(a, -1, { keepdim: true }).shape).toEqual([2, 1]);
    expect(argmax(a).data[0]).toBe(4);
    expect(argmax(nd([1, NaN, 5], [3]), 0).data[0]).toBe(1);
  });
});
