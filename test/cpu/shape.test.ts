import { describe, expect, it } from 'vitest';
import {
  cat,
  expand,
  flatten,
  nd,
  ndArange,
  ndToNested,
  narrow,
  permute,
  reshape,
  slice,
  split,
  squeeze,
  stack,
  transpose,
  unsqueeze,
} from '../../src/cpu/index.js';

const x = reshape(ndArange(24), [2, 3, 4]);

describe('shape ops', () => {
  it('reshape infers -1 and validates', () => {
    expect(reshape(x, [4, -1]).shape).toEqual([4, 6]);
    expect(() => reshape(x, [5, -1])).toThrow(/cannot/);
    expect(() => reshape(x, [-1, -1])).toThrow(/only one/);
  });

  it('transpose and permute', () => {
    const m = nd([1, 2, 3, 4, 5, 6], [2, 3]);
    expect(ndToNested(transpose(m, 0, 1))).toEqual([
      [1, 4],
      [2, 5],
      [3, 6],
    ]);
    const p = permute(x, [2, 0, 1]);
    expect(p.shape).toEqual([4, 2, 3]);
    // p[k][i][j] = x[i][j][k] = 12 i + 4 j + k
    expect(p.data[3 * 6 + 1 * 3 + 2]).toBe(12 + 8 + 3);
    expect(() => permute(x, [0, 0, 1])).toThrow(/permutation/);
    expect(transpose(x).shape).toEqual([2, 4, 3]);
  });

  it('narrow and slice', () => {
    const n = narrow(x, 2, 1, 2);
    expect(n.shape).toEqual([2, 3, 2]);
    expect(ndToNested(n)).toEqual([
      [
        [1, 2],
        [5, 6],
        [9, 10],
      ],
      [
        [13, 14],
        [17, 18],
        [21, 22],
      ],
    ]);
    expect(() => narrow(x, 2, 3, 2)).toThrow(/out of range/);
    expect(Array.from(slice(ndArange(10), 0, 1, 8, 3).data)).toEqual([1, 4, 7]);
    expect(Array.from(slice(ndArange(10), 0, -3).data)).toEqual([7, 8, 9]);
    expect(slice(ndArange(10), 0, 5, 2).shape).toEqual([0]);
  });

  it('cat and stack', () => {
    const a = nd([1, 2, 3, 4], [2, 2]);
    const b = nd([5, 6], [2, 1]);
    expect(ndToNested(cat([a, b], 1))).toEqual([
      [1, 2, 5],
      [3, 4, 6],
    ]);
    expect(ndToNested(cat([a, nd([7, 8], [1, 2])], 0))).toEqual([
      [1, 2],
      [3, 4],
      [7, 8],
    ]);
    expect(() => cat([a, b], 0)).toThrow(/does not match/);
    const s = stack([nd([1, 2], [2]), nd([3, 4], [2])], 1);
    expect(ndToNested(s)).toEqual([
      [1, 3],
      [2, 4],
    ]);
    expect(stack([a, a, a], 0).shape).toEqual([3, 2, 2]);
  });

  it('expand, squeeze, unsqueeze, flatten, split', () => {
    expect(ndToNested(expand(nd([1, 2], [2, 1]), [-1, 3]))).toEqual([
      [1, 1, 1],
      [2, 2, 2],
    ]);
    expect(expand(nd([1, 2], [2]), [3, 2]).shape).toEqual([3, 2]);
    expect(() => expand(nd([1, 2], [2]), [3])).toThrow();
    expect(unsqueeze(x, -1).shape).toEqual([2, 3, 4, 1]);
    expect(squeeze(nd([1, 2], [1, 2, 1])).shape).toEqual([2]);
    expect(squeeze(nd([1, 2], [1, 2]), 1).shape).toEqual([1, 2]);
    expect(flatten(x, 1).shape).toEqual([2, 12]);
    const [p, q] = split(x, 2, -1);
    expect(p.shape).toEqual([2, 3, 2]);
    expect(q.data[0]).toBe(2);
  });
});
