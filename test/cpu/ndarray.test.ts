import { describe, expect, it } from 'vitest';
import {
  broadcastShapes,
  broadcastTo,
  nd,
  ndGet,
  ndSize,
  ndStrides,
  ndToNested,
  ndZeros,
  normalizeAxis,
  unravelIndex,
} from '../../src/cpu/index.js';

describe('ndarray basics', () => {
  it('nd validates the data length and copies', () => {
    const src = [1, 2, 3, 4, 5, 6];
    const a = nd(src, [2, 3]);
    expect(a.shape).toEqual([2, 3]);
    src[0] = 99;
    expect(a.data[0]).toBe(1);
    expect(() => nd([1, 2, 3], [2, 2])).toThrow(/3 elements.*\[2, 2\].*4/);
    expect(() => nd([], [-1])).toThrow(/invalid shape/);
  });

  it('sizes, strides, zeros and scalars', () => {
    expect(ndSize([])).toBe(1);
    expect(ndSize([2, 0, 3])).toBe(0);
    expect(ndSize([2, 3, 4])).toBe(24);
    expect(ndStrides([2, 3, 4])).toEqual([12, 4, 1]);
    expect(ndStrides([])).toEqual([]);
    expect(Array.from(ndZeros([2, 2]).data)).toEqual([0, 0, 0, 0]);
  });

  it('index helpers', () => {
    expect(unravelIndex(23, [2, 3, 4])).toEqual([1, 2, 3]);
    expect(unravelIndex(5, [2, 3])).toEqual([1, 2]);
    expect(ndGet(nd([1, 2, 3, 4, 5, 6], [2, 3]), [1, 0])).toBe(4);
    expect(normalizeAxis(-1, 3)).toBe(2);
    expect(() => normalizeAxis(3, 3)).toThrow(/out of range/);
    expect(ndToNested(nd([1, 2, 3, 4], [2, 2]))).toEqual([
      [1, 2],
      [3, 4],
    ]);
  });
});

describe('broadcasting', () => {
  it('follows NumPy rules', () => {
    expect(broadcastShapes([2, 3], [3])).toEqual([2, 3]);
    expect(broadcastShapes([4, 1, 3], [5, 1])).toEqual([4, 5, 3]);
    expect(broadcastShapes([], [2, 2])).toEqual([2, 2]);
    expect(broadcastShapes([1], [0])).toEqual([0]);
  });

  it('throws naming both shapes', () => {
    expect(() => broadcastShapes([2, 3], [4])).toThrow('[2, 3]');
    expect(() => broadcastShapes([2, 3], [4])).toThrow('[4]');
    expect(() => broadcastShapes([2, 3, 4], [3, 1, 5])).toThrow(/cannot be broadcast/);
  });

  it('broadcastTo materialises', () => {
    const row = nd([1, 2, 3], [3]);
    expect(ndToNested(broadcastTo(row, [2, 3]))).toEqual([
      [1, 2, 3],
      [1, 2, 3],
    ]);
    const col = nd([1, 2], [2, 1]);
    expect(ndToNested(broadcastTo(col, [2, 3]))).toEqual([
      [1, 1, 1],
      [2, 2, 2],
    ]);
    expect(broadcastTo(nd([7], []), [2, 2]).data).toEqual(Float64Array.of(7, 7, 7, 7));
    expect(() => broadcastTo(nd([1, 2], [2]), [3])).toThrow(/cannot broadcast/);
    expect(() => broadcastTo(nd([1, 2], [2]), [])).toThrow(/cannot broadcast/);
  });
});
