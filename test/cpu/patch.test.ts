import { describe, expect, it } from 'vitest';
import { conv2dPatch, linear, nd, ndArange, ndRandn, patchify, reshape, transpose, unpatchify } from '../../src/cpu/index.js';

describe('patchify / unpatchify', () => {
  it('uses channel-last-within-patch ordering (pi*p + pj)*C + c', () => {
    // x[b][c][y][x] = 1000 c + 10 y + x, B=1, C=2, H=W=4, p=2
    const data: number[] = [];
    for (let c = 0; c < 2; c++) for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) data.push(1000 * c + 10 * y + x);
    const img = nd(data, [1, 2, 4, 4]);
    const t = patchify(img, 2);
    expect(t.shape).toEqual([1, 4, 8]);
    // token 1 = patch row 0, col 1 -> pixels y in {0,1}, x in {2,3}
    // feature (pi*2+pj)*2+c
    expect(Array.from(t.data.subarray(8, 16))).toEqual([2, 1002, 3, 1003, 12, 1012, 13, 1013]);
    // token 2 = patch row 1, col 0
    expect(t.data[16]).toBe(20);
  });

  it('unpatchify inverts patchify (square and rectangular grids)', () => {
    const img = ndRandn([2, 3, 8, 12], 1);
    const t = patchify(img, 4);
    expect(t.shape).toEqual([2, 6, 48]);
    expect(unpatchify(t, 4, 3, [2, 3]).data).toEqual(img.data);
    const sq = ndRandn([1, 3, 8, 8], 2);
    expect(unpatchify(patchify(sq, 2), 2, 3).data).toEqual(sq.data);
    expect(() => unpatchify(t, 4, 3)).toThrow(/grid/);
  });
});

describe('conv2dPatch', () => {
  it('hand-computed 1-channel case', () => {
    const x = reshape(ndArange(16), [1, 1, 4, 4]);
    const w = nd([1, 0, 0, -1], [1, 1, 2, 2]); // top-left minus bottom-right
    const y = conv2dPatch(x, w, nd([0.5], [1]));
    expect(y.shape).toEqual([1, 1, 2, 2]);
    expect(Array.from(y.data)).toEqual([-5 + 0.5, -5 + 0.5, -5 + 0.5, -5 + 0.5]);
    const overlapping = conv2dPatch(x, w, undefined, 1);
    expect(overlapping.shape).toEqual([1, 1, 3, 3]);
  });

  it('equals patchify followed by a linear layer with permuted weights', () => {
    const [b, c, p, o] = [2, 3, 2, 5];
    const x = ndRandn([b, c, 4, 6], 3);
    const w = ndRandn([o, c, p, p], 4);
    const bias = ndRandn([o], 5);
    const y = conv2dPatch(x, w, bias); // [B, O, 2, 3]
    // weight [O, C, pi, pj] -> [O, pi, pj, C] to match the patchify feature order
    const wFlat = reshape(transpose(transpose(w, 1, 2), 2, 3), [o, p * p * c]);
    const tokens = linear(patchify(x, p), wFlat, bias); // [B, 6, O]
    const yTokens = transpose(reshape(y, [b, o, 6]), 1, 2);
    tokens.data.forEach((v, i) => expect(v).toBeCloseTo(yTokens.data[i], 13));
  });
});
