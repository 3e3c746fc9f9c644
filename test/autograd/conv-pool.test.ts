/**
 * maxPool2d, avgPool2d (count_include_pad true and false) and inference batchNorm: forward vs
 * the float64 reference (src/cpu/conv.ts), gradients vs its float64 central differences
 * (gradCheck, family finiteDiff: atol 1e-4, rtol 1e-3), on odd shapes with padding and strides
 * that leave a ragged edge. Max pooling inputs are distinct values (a random permutation), so no
 * finite-difference step crosses a tie. Forward tolerances: max pooling copies (exact); average
 * pooling sums ≤ 9 terms (f32Reduction with Σ|x| ≤ 9·max|x|); batch-norm a few f32 ops (norm).
 */
import { describe, expect, it } from 'vitest';
import { gradCheck } from '../../src/autograd/gradcheck.js';
import { batchNormRef, pool2dRef } from '../../src/cpu/conv.js';
import { makeRng } from '../../src/cpu/random.js';
import { F, tensor, toArray, zeros } from '../../src/index.js';
import { expectAllclose, maxAbs, TOL } from '../helpers/compare.js';
import { randomData } from '../helpers/random.js';
import { useGpu } from '../helpers/setup.js';

useGpu();

const tol = { atol: TOL.finiteDiff.atol, rtol: TOL.finiteDiff.rtol };
const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
const inp = (shape: number[], seed: number, lo = -1, hi = 1) => ({ data: randomData(size(shape), seed, lo, hi), shape });

/** Distinct values 0.01·perm(i) − 1: ties impossible, gaps (0.01) far above the FD step. */
function distinct(shape: number[], seed: number) {
  const n = size(shape);
  const p = Array.from({ length: n }, (_, i) => i);
  const r = makeRng(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  return { data: Float64Array.from(p, (v) => 0.01 * v - 1), shape };
}

interface PoolCase {
  name: string;
  shape: number[];
  k: [number, number];
  stride?: [number, number];
  padding?: [number, number];
  countIncludePad?: boolean;
}
const POOLS: PoolCase[] = [
  { name: '3×3 stride 2 valid (InceptionV3 stem), 11×9', shape: [2, 3, 11, 9], k: [3, 3], stride: [2, 2] },
  { name: '3×3 stride 1 pad 1 (same)', shape: [1, 4, 7, 6], k: [3, 3], stride: [1, 1], padding: [1, 1] },
  { name: '2×3 stride (2, 1) pad (1, 0)', shape: [1, 2, 9, 8], k: [2, 3], stride: [2, 1], padding: [1, 0] },
  { name: '3×3 stride 2 pad 1, 7×7', shape: [1, 2, 7, 7], k: [3, 3], stride: [2, 2], padding: [1, 1] },
];

describe('maxPool2d / avgPool2d vs float64', () => {
  for (const c of POOLS) {
    it(`max: ${c.name}`, async () => {
      const x = distinct(c.shape, 3);
      const o = { stride: c.stride, padding: c.padding };
      const want = pool2dRef('max', x, c.k, o);
      const got = await toArray(F.maxPool2d(tensor(Float32Array.from(x.data), c.shape), c.k, o));
      expectAllclose(got, Float32Array.from(want.data), TOL.exact, { label: 'maxPool2d', shape: want.shape });
      const r = await gradCheck(
        ([t]) => F.maxPool2d(t, c.k, o),
        ([t]) => pool2dRef('max', t, c.k, o),
        [x],
        tol,
      );
      expect(r.ok, r.message).toBe(true);
    });
    for (const countIncludePad of [true, false]) {
      it(`avg (countIncludePad ${countIncludePad}): ${c.name}`, async () => {
        const x = inp(c.shape, 5);
        const o = { stride: c.stride, padding: c.padding, countIncludePad };
        const want = pool2dRef('avg', x, c.k, o);
        const got = await toArray(F.avgPool2d(tensor(Float32Array.from(x.data), c.shape), c.k, o));
        expectAllclose(got, want.data, TOL.f32Reduction, {
          label: 'avgPool2d',
          shape: want.shape,
          scale: c.k[0] * c.k[1] * maxAbs(x.data),
        });
        const r = await gradCheck(
          ([t]) => F.avgPool2d(t, c.k, o),
          ([t]) => pool2dRef('avg', t, c.k, o),
          [x],
          tol,
        );
        expect(r.ok, r.message).toBe(true);
      });
    }
  }
  it('global average = 8×8 stride 8 on an 8×8 map', async () => {
    const x = inp([2, 5, 8, 8], 9);
    const got = await toArray(F.avgPool2d(tensor(Float32Array.from(x.data), x.shape), 8));
    const want = pool2dRef('avg', x, [8, 8]);
    expectAllclose(got, want.data, TOL.f32Reduction, { label: 'global avg', scale: 64 * maxAbs(x.data) });
  });
  it('max pooling propagates NaN to every window that holds it (as PyTorch)', async () => {
    const x = distinct([1, 1, 5, 5], 8);
    x.data[12] = Number.NaN; // the centre pixel
    const o = { stride: [2, 2] as [number, number], padding: [1, 1] as [number, number] };
    const want = pool2dRef('max', x, [3, 3], o);
    expect(want.data.some((v) => Number.isNaN(v))).toBe(true);
    const got = await toArray(F.maxPool2d(tensor(Float32Array.from(x.data), x.shape), 3, o));
    expectAllclose(got, Float32Array.from(want.data), TOL.exact, { label: 'maxPool2d NaN', shape: want.shape });
  });
  it('bad input names the op', () => {
    expect(() => F.maxPool2d(zeros([1, 1, 2, 2]), 3)).toThrow(/maxPool2d: kernel 3×3 does not fit input 2×2/);
    expect(() => F.avgPool2d(zeros([1, 1, 5, 5]), 3, { padding: 2 })).toThrow(/avgPool2d: padding 2×2 must be at most half/);
    expect(() => F.avgPool2d(zeros([5, 5]), 3)).toThrow(/avgPool2d: input must be \[N, C, H, W\]/);
  });
});

describe('batchNorm (inference) vs float64', () => {
  it('forward and gradients in x, mean, var, weight, bias', async () => {
    const shape = [2, 3, 5, 4];
    const args = [inp(shape, 11), inp([3], 12), inp([3], 13, 0.5, 2), inp([3], 14), inp([3], 15)];
    const eps = 1e-3;
    const f = (t: ReturnType<typeof tensor>[]) => F.batchNorm(t[0], t[1], t[2], t[3], t[4], eps);
    const want = batchNormRef(args[0], args[1], args[2], args[3], args[4], eps);
    const got = await toArray(f(args.map((a) => tensor(Float32Array.from(a.data), a.shape))));
    expectAllclose(got, want.data, TOL.norm, { label: 'batchNorm', shape });
    const r = await gradCheck(
      (t) => f(t),
      (a) => batchNormRef(a[0], a[1], a[2], a[3], a[4], eps),
      args,
      tol,
    );
    expect(r.ok, r.message).toBe(true);
  });
  it('without weight (Keras scale: false) and mismatched shapes', async () => {
    const x = inp([1, 4, 3, 3], 21);
    const m = inp([4], 22);
    const v = inp([4], 23, 0.1, 1);
    const b = inp([4], 24);
    const t = (a: { data: Float64Array; shape: number[] }) => tensor(Float32Array.from(a.data), a.shape);
    const got = await toArray(F.batchNorm(t(x), t(m), t(v), null, t(b), 1e-3));
    expectAllclose(got, batchNormRef(x, m, v, null, b, 1e-3).data, TOL.norm, { label: 'batchNorm no weight' });
    expect(() => F.batchNorm(t(x), t(inp([3], 1)), t(v))).toThrow(/batchNorm: mean must be \[4\]/);
  });
});
