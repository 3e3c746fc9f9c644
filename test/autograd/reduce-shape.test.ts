/**
 * Reductions and shape ops through autograd: forward vs float64, gradients vs central
 * differences. Tolerances: atol 1e-4 + rtol 1e-3 (f32 sums over ≤ 1000 terms).
 */
import type { Tensor } from '../../src/tensor/tensor.js';
import { describe, expect, it } from 'vitest';
import * as C from '../../src/cpu/index.js';
import { gradCheck } from '../../src/autograd/gradcheck.js';
import * as E from '../../src/autograd/ops/elementwise.js';
import * as R from '../../src/autograd/ops/reduce.js';
import * as S from '../../src/autograd/ops/shape.js';
import { tensor, toArray } from '../../src/tensor/creation.js';
import { sizeOf, useGpu } from '../helpers/setup.js';
import { randomData } from '../helpers/random.js';

useGpu();

const shape = [3, 5, 7];
const data = randomData(sizeOf(shape), 42, -2, 2);

describe('reductions', () => {
  const axesCases: (number | number[] | undefined)[] = [undefined, 0, 1, -1, [0, 2], [1, 2]];
  for (const axes of axesCases) {
    for (const keepdim of [false, true]) {
      it(`sum/mean/var over ${JSON.stringify(axes)} keepdim=${keepdim}`, async () => {
        const ax = axes === undefined ? undefined : Array.isArray(axes) ? axes : [axes];
        for (const [name, gpu, cpu] of [
          ['sum', (x: Tensor) => R.sum(x, axes, { keepdim }), (x: C.NDArray) => C.sum(x, ax, { keepdim })],
          ['mean', (x: Tensor) => R.mean(x, axes, { keepdim }), (x: C.NDArray) => C.mean(x, ax, { keepdim })],
          ['var', (x: Tensor) => R.variance(x, axes, { keepdim }), (x: C.NDArray) => C.variance(x, ax, { keepdim })],
        ] as const) {
          const r = await gradCheck(
            ([x]) => gpu(x),
            ([x]) => cpu(x),
            [{ data, shape }],
          );
          expect(r.ok, `${name}: ${r.message}`).toBe(true);
        }
      });
    }
  }

  it('max/min with gradient to the extremum', async () => {
    for (const axes of [1, [0, 2]] as const) {
      const ax = Array.isArray(axes) ? [...axes] : [axes];
      let r = await gradCheck(
        ([x]) => R.max(x, typeof axes === 'number' ? axes : [...axes]),
        ([x]) => C.max(x, ax),
        [{ data, shape }],
      );
      expect(r.ok, r.message).toBe(true);
      r = await gradCheck(
        ([x]) => R.min(x, typeof axes === 'number' ? axes : [...axes]),
        ([x]) => C.min(x, ax),
        [{ data, shape }],
      );
      expect(r.ok, r.message).toBe(true);
    }
  });

  it('argmax / argmin', async () => {
    const x = tensor(Float32Array.from(data), shape);
    const got = await toArray(R.argmax(x, 1));
    const want = C.argmax(C.nd(Float32Array.from(data), shape), 1);
    expect(Array.from(got)).toEqual(Array.from(want.data));
    const flat = await toArray(R.argmax(x));
    let best = 0;
    for (let i = 1; i < data.length; i++) if (Math.fround(data[i]) > Math.fround(data[best])) best = i;
    expect(flat[0]).toBe(best);
  });

  it('sum of 10^6 elements matches float64 to 1e-5 relative', async () => {
    const n = 1_000_000;
    const d = randomData(n, 3, 0, 1);
    const x = tensor(Float32Array.from(d), [n]);
    const got = (await toArray(R.sum(x)))[0];
    const want = Float32Array.from(d).reduce((a, b) => a + b, 0);
    expect(Math.abs(got - want) / want).toBeLessThan(1e-5);
  });
});

describe('shape ops', () => {
  it('reshape, permute, transpose, contiguous, flatten', async () => {
    const r = await gradCheck(
      ([x]) => E.mul(S.reshape(S.permute(x, [2, 0, 1]), [7, 15]), 2),
      ([x]) => C.mulScalar(C.reshape(C.permute(x, [2, 0, 1]), [7, 15]), 2),
      [{ data, shape }],
    );
    expect(r.ok, r.message).toBe(true);
    const r2 = await gradCheck(
      ([x]) => S.contiguous(S.transpose(S.flatten(x, 1), 0, 1)),
      ([x]) => C.transpose(C.flatten(x, 1), 0, 1),
      [{ data, shape }],
    );
    expect(r2.ok, r2.message).toBe(true);
  });

  it('narrow/slice, expand, squeeze/unsqueeze, pad', async () => {
    let r = await gradCheck(
      ([x]) => S.slice(S.narrow(x, 1, 1, 3), 2, 2, -1),
      ([x]) => C.slice(C.narrow(x, 1, 1, 3), 2, 2, 6),
      [{ data, shape }],
    );
    expect(r.ok, r.message).toBe(true);
    r = await gradCheck(
      ([x]) => S.expand(S.unsqueeze(x, 1), [3, 4, 5, 7]),
      ([x]) => C.expand(C.unsqueeze(x, 1), [3, 4, 5, 7]),
      [{ data, shape }],
    );
    expect(r.ok, r.message).toBe(true);
    r = await gradCheck(
      ([x]) => S.squeeze(S.unsqueeze(x, 0), 0),
      ([x]) => x,
      [{ data, shape }],
    );
    expect(r.ok, r.message).toBe(true);
    r = await gradCheck(
      ([x]) =>
        S.pad(x, [
          [1, 2],
          [0, 3],
        ]),
      ([x]) => {
        const out = C.ndZeros([3, 8, 10]);
        for (let a = 0; a < 3; a++)
          for (let b = 0; b < 5; b++) for (let c = 0; c < 7; c++) out.data[a * 80 + (b + 1) * 10 + c] = x.data[a * 35 + b * 7 + c];
        return out;
      },
      [{ data, shape }],
    );
    expect(r.ok, r.message).toBe(true);
  });

  it('cat and stack', async () => {
    const d2 = randomData(3 * 2 * 7, 5);
    let r = await gradCheck(
      ([a, b]) => S.cat([a, b, a], 1),
      ([a, b]) => C.cat([a, b, a], 1),
      [
        { data, shape },
        { data: d2, shape: [3, 2, 7] },
      ],
    );
    expect(r.ok, r.message).toBe(true);
    r = await gradCheck(
      ([a, b]) => S.stack([a, b], 1),
      ([a, b]) => C.stack([a, b], 1),
      [
        { data: d2, shape: [3, 2, 7] },
        { data: d2.map((v) => v * 2), shape: [3, 2, 7] },
      ],
    );
    expect(r.ok, r.message).toBe(true);
  });

  it('bad input gives errors naming the op', () => {
    const x = tensor(Float32Array.from(data), shape);
    expect(() => S.reshape(x, [4, 4])).toThrow(/reshape: cannot reshape tensor of shape \[3, 5, 7\]/);
    expect(() => S.permute(x, [0, 1])).toThrow(/permute/);
    expect(() => S.narrow(x, 1, 3, 5)).toThrow(/narrow: range/);
    expect(() => R.sum(x, 3)).toThrow(/sum: dim 3 is out of range for a tensor of rank 3/);
    expect(() => S.cat([x, tensor(new Float32Array(4), [2, 2])], 0)).toThrow(/cat: tensors must match/);
    expect(() => S.expand(x, [3, 6, 7])).toThrow(/expand: cannot expand/);
  });
});
