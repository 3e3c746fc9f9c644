import { describe, expect, it } from 'vitest';
import { linear, matmul, nd, ndRandUniform, ndToNested, outer, transpose } from '../../src/cpu/index.js';

/** Naive triple loop, independent of the gemm inside matmul. */
function naive2d(a: number[][], b: number[][]): number[][] {
  return a.map((row) => b[0].map((_, j) => row.reduce((s, v, k) => s + v * b[k][j], 0)));
}

describe('matmul', () => {
  it('2x3 · 3x2 by hand', () => {
    const a = nd([1, 2, 3, 4, 5, 6], [2, 3]);
    const b = nd([7, 8, 9, 10, 11, 12], [3, 2]);
    // [1*7+2*9+3*11, 1*8+2*10+3*12] = [58, 64]; [4*7+5*9+6*11, 4*8+5*10+6*12] = [139, 154]
    expect(ndToNested(matmul(a, b))).toEqual([
      [58, 64],
      [139, 154],
    ]);
  });

  it('1-D cases follow torch.matmul', () => {
    const v = nd([1, 2, 3], [3]);
    const dot = matmul(v, v);
    expect(dot.shape).toEqual([]);
    expect(dot.data[0]).toBe(14);
    const m = nd([1, 0, 2, 0, 1, 3], [3, 2]);
    const vm = matmul(v, m);
    expect(vm.shape).toEqual([2]);
    expect(Array.from(vm.data)).toEqual([1 + 4 + 3, 9]);
    const mt = nd([1, 0, 2, 0, 1, 3], [2, 3]);
    const mv = matmul(mt, v);
    expect(mv.shape).toEqual([2]);
    expect(Array.from(mv.data)).toEqual([1 + 6, 2 + 9]);
    // batched matrix · vector
    const bm = matmul(nd([...mt.data, ...mt.data], [2, 2, 3]), v);
    expect(bm.shape).toEqual([2, 2]);
  });

  it('broadcasts batch dims', () => {
    const a = ndRandUniform([2, 1, 3, 4], 1);
    const b = ndRandUniform([5, 4, 2], 2);
    const c = matmul(a, b);
    expect(c.shape).toEqual([2, 5, 3, 2]);
    const rows = (t: Float64Array, off: number, r: number, cc: number) =>
      Array.from({ length: r }, (_, i) => Array.from(t.subarray(off + i * cc, off + (i + 1) * cc)));
    for (let i = 0; i < 2; i++)
      for (let j = 0; j < 5; j++) {
        const expected = naive2d(rows(a.data, i * 12, 3, 4), rows(b.data, j * 8, 4, 2));
        const got = rows(c.data, (i * 5 + j) * 6, 3, 2);
        got.forEach((r, ri) => r.forEach((g, ci) => expect(g).toBeCloseTo(expected[ri][ci], 13)));
      }
    expect(() => matmul(nd([1, 2], [1, 2]), nd([1, 2, 3], [3, 1]))).toThrow(/inner dims/);
    expect(() => matmul(ndRandUniform([2, 2, 2], 0), ndRandUniform([3, 2, 2], 0))).toThrow(/broadcast/);
  });

  it('linear = x wᵀ + b, outer', () => {
    const x = nd([1, 2], [1, 2]);
    const w = nd([1, 0, 0, 1, 1, 1], [3, 2]);
    const b = nd([10, 20, 30], [3]);
    expect(ndToNested(linear(x, w, b))).toEqual([[11, 22, 33]]);
    expect(ndToNested(linear(x, w))).toEqual([[1, 2, 3]]);
    expect(ndToNested(outer(nd([1, 2], [2]), nd([3, 4, 5], [3])))).toEqual([
      [3, 4, 5],
      [6, 8, 10],
    ]);
  });

  // Timing is a benchmark concern, not a test: this checks correctness at a realistic size.
  it('512x512 matmul: spot checks and (AB)ᵀ = BᵀAᵀ', () => {
    const a = ndRandUniform([512, 512], 3);
    const b = ndRandUniform([512, 512], 4);
    const c = matmul(a, b);
    // spot-check one element
    let s = 0;
    for (let k = 0; k < 512; k++) s += a.data[7 * 512 + k] * b.data[k * 512 + 300];
    expect(c.data[7 * 512 + 300]).toBeCloseTo(s, 10);
    // (A B)ᵀ = Bᵀ Aᵀ on rectangular blocks
    const a2 = nd(a.data.subarray(0, 64 * 512), [64, 512]);
    const b2 = nd(b.data.subarray(0, 512 * 32), [512, 32]);
    const lhs = transpose(matmul(a2, b2));
    const rhs = matmul(transpose(b2), transpose(a2));
    lhs.data.forEach((v, i) => expect(v).toBeCloseTo(rhs.data[i], 10));
  });
});
