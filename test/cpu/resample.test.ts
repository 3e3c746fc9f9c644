import { describe, expect, it } from 'vitest';
import { cubicCoefficients, interpolate, nd, ndFull, ndRandn, ndToNested, resampleTaps } from '../../src/cpu/index.js';

/** out[i][j] = sum_p sum_q M[i][p] M[j][q] X[p][q] for a separable 1-D matrix M. */
function separable(m: number[][], x: number[][]): number[][] {
  return m.map((mi) => m.map((mj) => mi.reduce((s, a, p) => s + a * mj.reduce((t, b, q) => t + b * x[p][q], 0), 0)));
}

/** Dense 1-D resampling matrix from taps (repeated indices accumulate). */
function tapMatrix(inSize: number, taps: { index: number[]; weight: number[] }[]): number[][] {
  return taps.map((t) => {
    const row = new Array<number>(inSize).fill(0);
    t.index.forEach((j, k) => (row[j] += t.weight[k]));
    return row;
  });
}

describe('cubic coefficients (Keys, a = -0.75)', () => {
  it('hand values at t = 0.25 / 0.5 / 0.75', () => {
    // W(x) = ((a+2)|x| - (a+3))|x|^2 + 1 for |x|<1;  a(|x|^3 - 5|x|^2 + 8|x| - 4) for 1<=|x|<2
    expect(cubicCoefficients(0.25)).toEqual([-0.10546875, 0.87890625, 0.26171875, -0.03515625]);
    expect(cubicCoefficients(0.5)).toEqual([-0.09375, 0.59375, 0.59375, -0.09375]);
    expect(cubicCoefficients(0.75)).toEqual([-0.03515625, 0.26171875, 0.87890625, -0.10546875]);
    expect(cubicCoefficients(0)).toEqual([0, 1, 0, 0]);
  });
});

describe('interpolate, no antialias', () => {
  const img = nd([1, 2, 3, 4], [1, 1, 2, 2]);

  it('bicubic 2x2 -> 4x4 (align_corners=false) from the formula', () => {
    // src = 0.5*(i+0.5) - 0.5 = -0.25, 0.25, 0.75, 1.25 -> (floor, t) = (-1, .75), (0, .25), (0, .75), (1, .25);
    // the 4 taps idx-1..idx+2 are clamped to [0, 1], so weights on the same pixel add up:
    //   i=0: taps (0,0,0,1) w (-.03515625,.26171875,.87890625,-.10546875) -> [1.10546875, -0.10546875]
    //   i=1: taps (0,0,1,1) w (-.10546875,.87890625,.26171875,-.03515625) -> [0.7734375, 0.2265625]
    //   i=2: taps (0,0,1,1) w (-.03515625,.26171875,.87890625,-.10546875) -> [0.2265625, 0.7734375]
    //   i=3: taps (0,1,1,1) w (-.10546875,.87890625,.26171875,-.03515625) -> [-0.10546875, 1.10546875]
    const m = [
      [1.10546875, -0.10546875],
      [0.7734375, 0.2265625],
      [0.2265625, 0.7734375],
      [-0.10546875, 1.10546875],
    ];
    const out = interpolate(img, [4, 4], 'bicubic');
    expect(out.shape).toEqual([1, 1, 4, 4]);
    const expected = separable(m, [
      [1, 2],
      [3, 4],
    ]);
    out.data.forEach((v, f) => expect(v).toBeCloseTo(expected[Math.floor(f / 4)][f % 4], 14));
    expect(out.data[0]).toBeCloseTo(0.68359375, 14); // the value torch prints for this case
  });

  it('bilinear 2x2 -> 4x4 clamps the negative source coordinate', () => {
    const out = interpolate(img, [4, 4], 'bilinear');
    expect(ndToNested(out)).toEqual([
      [
        [
          [1, 1.25, 1.75, 2],
          [1.5, 1.75, 2.25, 2.5],
          [2.5, 2.75, 3.25, 3.5],
          [3, 3.25, 3.75, 4],
        ],
      ],
    ]);
  });

  it('align_corners=true maps corners to corners', () => {
    const bl = interpolate(img, [3, 3], 'bilinear', { alignCorners: true });
    expect(ndToNested(bl)).toEqual([
      [
        [
          [1, 1.5, 2],
          [2, 2.5, 3],
          [3, 3.5, 4],
        ],
      ],
    ]);
    // bicubic: middle sample at t = 0.5 with taps (0,0,1,1) -> weights 0.5, 0.5
    const bc = interpolate(img, [3, 3], 'bicubic', { alignCorners: true });
    expect(Array.from(bc.data)).toEqual([1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4]);
  });

  it('bicubic 4 -> 2 downsampling (no antialias): weights at t = 0.5 with clamping', () => {
    // src = 2(i+0.5) - 0.5 = 0.5, 2.5; i=0 taps (-1,0,1,2)->(0,0,1,2)
    const x = nd([0, 1, 2, 3], [1, 4]);
    const out = interpolate(x, [1, 2], 'bicubic');
    expect(out.data[0]).toBeCloseTo(0.59375 * 1 - 0.09375 * 2, 15);
    // i=1 taps (1,2,3,4)->(1,2,3,3)
    expect(out.data[1]).toBeCloseTo(-0.09375 * 1 + 0.59375 * 2 + (0.59375 - 0.09375) * 3, 15);
  });

  it('same size is the identity; any leading dims work', () => {
    const x = ndRandn([2, 3, 5, 7], 1);
    expect(interpolate(x, [5, 7], 'bicubic').data).toEqual(x.data);
    expect(interpolate(x, [5, 7], 'bilinear').data).toEqual(x.data);
    expect(interpolate(ndRandn([5, 7], 2), [3, 3], 'bilinear').shape).toEqual([3, 3]);
  });

  it('scaleFactor: output floor(in*sf), mapping from 1/sf', () => {
    const x = ndRandn([1, 1, 5, 5], 3);
    const out = interpolate(x, undefined, 'bilinear', { scaleFactor: [1.5, 1.5] });
    expect(out.shape).toEqual([1, 1, 7, 7]);
    const taps = resampleTaps(5, 7, 'bilinear', { scaleFactor: 1.5 });
    // src = (i + 0.5)/1.5 - 0.5; for i = 3: 1.8333.. -> idx 1, t = 0.8333..
    expect(taps[3].index).toEqual([1, 2]);
    expect(taps[3].weight[1]).toBeCloseTo(3.5 / 1.5 - 0.5 - 1, 15);
  });
});

describe('interpolate, antialias', () => {
  it('bilinear 4 -> 2 weights by hand', () => {
    // scale 2, support 2, center 1: taps 0..2, tri((j - 0.5)/2) = .75, .75, .25 -> /1.75
    const taps = resampleTaps(4, 2, 'bilinear', { antialias: true });
    expect(taps[0].index).toEqual([0, 1, 2]);
    taps[0].weight.forEach((w, k) => expect(w).toBeCloseTo([3 / 7, 3 / 7, 1 / 7][k], 15));
    expect(taps[1].index).toEqual([1, 2, 3]);
    taps[1].weight.forEach((w, k) => expect(w).toBeCloseTo([1 / 7, 3 / 7, 3 / 7][k], 15));
    const out = interpolate(nd([0, 1, 2, 3], [1, 4]), [1, 2], 'bilinear', { antialias: true });
    expect(out.data[0]).toBeCloseTo(5 / 7, 15);
    expect(out.data[1]).toBeCloseTo(16 / 7, 15);
  });

  it('bicubic 4 -> 2 weights by hand (a = -0.5)', () => {
    // center 1, support 4 -> taps 0..3 at x = (j - 0.5)/2 = -.25, .25, .75, 1.25
    // K(.25) = (1.5*.25 - 2.5)*.0625 + 1 = .8671875; K(.75) = .2265625; K(1.25) = -.0703125
    const raw = [0.8671875, 0.8671875, 0.2265625, -0.0703125];
    const total = raw.reduce((a, b) => a + b, 0); // 1.890625
    const taps = resampleTaps(4, 2, 'bicubic', { antialias: true });
    expect(taps[0].index).toEqual([0, 1, 2, 3]);
    taps[0].weight.forEach((w, k) => expect(w).toBeCloseTo(raw[k] / total, 15));
    expect(taps[1].weight.map((w) => +w.toFixed(12))).toEqual([...taps[0].weight].reverse().map((w) => +w.toFixed(12)));
  });

  it('downsampling a constant image keeps it constant', () => {
    const c = ndFull([1, 2, 37, 37], 3.25);
    for (const mode of ['bilinear', 'bicubic'] as const)
      for (const size of [
        [16, 16],
        [5, 11],
        [36, 20],
      ] as [number, number][]) {
        const out = interpolate(c, size, mode, { antialias: true });
        for (const v of out.data) expect(v).toBeCloseTo(3.25, 13);
      }
  });

  it('downsampling a ramp gives a ramp in the interior (integer factors)', () => {
    // x[i][j] = 2 i + 3 j + 1: a symmetric filter centred on input coordinate s(i+0.5) - 0.5
    // reproduces a linear function exactly when the taps are not cut by the border.
    const h = 48;
    const w = 48;
    const data: number[] = [];
    for (let i = 0; i < h; i++) for (let j = 0; j < w; j++) data.push(2 * i + 3 * j + 1);
    const ramp = nd(data, [1, 1, h, w]);
    for (const mode of ['bilinear', 'bicubic'] as const)
      for (const s of [2, 3, 4]) {
        const n = h / s;
        const out = interpolate(ramp, [n, n], mode, { antialias: true });
        const support = (mode === 'bilinear' ? 1 : 2) * s;
        for (let i = 0; i < n; i++)
          for (let j = 0; j < n; j++) {
            const ci = s * (i + 0.5);
            const cj = s * (j + 0.5);
            const interior = (c: number) => c - support >= 0 && c + support <= h;
            if (!interior(ci) || !interior(cj)) continue;
            expect(out.data[i * n + j]).toBeCloseTo(2 * (ci - 0.5) + 3 * (cj - 0.5) + 1, 11);
          }
      }
  });

  it('antialiased upsampling still uses the aa path (bilinear equals plain bilinear)', () => {
    const x = ndRandn([1, 1, 5, 6], 4);
    const aa = interpolate(x, [9, 13], 'bilinear', { antialias: true });
    const plain = interpolate(x, [9, 13], 'bilinear');
    aa.data.forEach((v, i) => expect(v).toBeCloseTo(plain.data[i], 14));
  });

  it('taps are normalised and in range', () => {
    for (const mode of ['bilinear', 'bicubic'] as const)
      for (const [i, o] of [
        [37, 16],
        [16, 37],
        [256, 224],
        [7, 3],
      ]) {
        const taps = resampleTaps(i, o, mode, { antialias: true });
        const m = tapMatrix(i, taps);
        for (const row of m) expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 14);
      }
  });
});
