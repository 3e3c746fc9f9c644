/**
 * conv2d through autograd vs float64 central differences of the reference (gradCheck), on
 * small shapes that are not tile multiples; finite differences in float64 of a float64 function,
 * GPU gradient in f32: tolerance family finiteDiff (atol 1e-4, rtol 1e-3). Also the bad-input
 * errors and the nn.Conv2d layer.
 */
import { describe, expect, it } from 'vitest';
import { gradCheck } from '../../src/autograd/gradcheck.js';
import { conv2dRef } from '../../src/cpu/conv.js';
import { F, nn, ops, tensor, toArray, zeros } from '../../src/index.js';
import { expectAllclose, maxAbs, TOL } from '../helpers/compare.js';
import { randomData } from '../helpers/random.js';
import { useGpu } from '../helpers/setup.js';

useGpu();

const tol = { atol: TOL.finiteDiff.atol, rtol: TOL.finiteDiff.rtol };
const inp = (shape: number[], seed: number) => ({
  data: randomData(
    shape.reduce((a, b) => a * b, 1),
    seed,
  ),
  shape,
});

describe('conv2d gradients vs finite differences', () => {
  it('stride 2, pad 1, bias: x, weight, bias', async () => {
    const o = { stride: [2, 2] as [number, number], padding: [1, 1] as [number, number] };
    const r = await gradCheck(
      ([x, w, b]) => F.conv2d(x, w, b, o),
      ([x, w, b]) => conv2dRef(x, w, b, o),
      [inp([2, 3, 7, 6], 1), inp([4, 3, 3, 3], 2), inp([4], 3)],
      tol,
    );
    expect(r.ok, r.message).toBe(true);
  });
  it('groups 2, dilation 2, 2×3 kernel', async () => {
    const o = { dilation: [2, 2] as [number, number], padding: [1, 2] as [number, number], groups: 2 };
    const r = await gradCheck(
      ([x, w]) => F.conv2d(x, w, null, o),
      ([x, w]) => conv2dRef(x, w, null, o),
      [inp([1, 4, 6, 7], 4), inp([6, 2, 2, 3], 5)],
      tol,
    );
    expect(r.ok, r.message).toBe(true);
  });
});

describe('conv2d bad input and nn.Conv2d', () => {
  it('names the op and the shapes', () => {
    const x = zeros([1, 3, 5, 5]);
    expect(() => F.conv2d(x, zeros([4, 2, 3, 3]))).toThrow(/conv2d: weight \[4, 2, 3, 3\] expects 2 input channels/);
    expect(() => F.conv2d(x, zeros([4, 3, 7, 7]))).toThrow(/does not fit input 5×5/);
    expect(() => F.conv2d(x, zeros([4, 3, 3, 3]), zeros([3]))).toThrow(/bias must be \[4\]/);
    expect(() => F.conv2d(x, zeros([4, 3, 3, 3]), null, { stride: 0 })).toThrow(/stride must be an integer ≥ 1/);
    expect(() => F.conv2d(zeros([3, 5, 5]), zeros([4, 3, 3, 3]))).toThrow(/input must be \[N, C, H, W\]/);
  });
  it('nn.Conv2d has PyTorch parameter shapes and computes conv2d', async () => {
    const m = new nn.Conv2d(4, 6, 3, { padding: 1, groups: 2 });
    expect(m.weight.shape).toEqual([6, 2, 3, 3]);
    expect(m.bias!.shape).toEqual([6]);
    const xd = randomData(4 * 5 * 5, 7);
    const y = m.forward(tensor(Float32Array.from(xd), [1, 4, 5, 5]));
    const w = Float64Array.from(await toArray(m.weight));
    const b = Float64Array.from(await toArray(m.bias!));
    const want = conv2dRef(
      { data: Float64Array.from(Float32Array.from(xd)), shape: [1, 4, 5, 5] },
      { data: w, shape: [6, 2, 3, 3] },
      { data: b, shape: [6] },
      { padding: [1, 1], groups: 2 },
    );
    const got = await toArray(y);
    expectAllclose(got, want.data, TOL.matmul, { label: 'Conv2d', shape: want.shape, scale: Math.sqrt(18) * maxAbs(want.data) });
    expect(ops.conv2d).toBe(F.conv2d);
  });
});
