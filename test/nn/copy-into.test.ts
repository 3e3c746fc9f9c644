/**
 * copyInto / writeHost (src/tensor/copy.ts), the copies that loadStateDict and EMA.copyTo use
 * instead of byte arithmetic: values land in the destination's own storage, views and strided
 * layouts included, and nothing outside the destination's elements changes.
 */
import { describe, expect, it } from 'vitest';
import * as ops from '../../src/autograd/ops/index.js';
import { runtime } from '../../src/gpu/runtime.js';
import { Linear } from '../../src/nn/layers.js';
import { EMA } from '../../src/nn/optim.js';
import { copyInto, writeHost } from '../../src/tensor/copy.js';
import { arange, full, tensor, toArray } from '../../src/tensor/creation.js';
import { scopeAsync } from '../../src/tensor/scope.js';
import { useGpu } from '../helpers/setup.js';

useGpu();

const host = async (t: Parameters<typeof toArray>[0]) => Array.from(await toArray(t));

describe('copyInto', () => {
  it('dense same-dtype copy into a window of a larger tensor leaves the rest untouched', () =>
    scopeAsync(async () => {
      const big = full([10], -1);
      copyInto(ops.narrow(big, 0, 3, 4), tensor([1, 2, 3, 4]));
      expect(await host(big)).toEqual([-1, -1, -1, 1, 2, 3, 4, -1, -1, -1]);
    }));

  it('strided source and destination (a transpose into a column block)', () =>
    scopeAsync(async () => {
      const src = ops.transpose(ops.reshape(arange(0, 6, 1, { dtype: 'f32' }), [2, 3]), 0, 1); // [[0,3],[1,4],[2,5]]
      const dst = full([3, 4], 9);
      copyInto(ops.narrow(dst, 1, 1, 2), src);
      expect(await host(dst)).toEqual([9, 0, 3, 9, 9, 1, 4, 9, 9, 2, 5, 9]);
    }));

  it('converts dtype (i32 → f32) and rejects a shape mismatch', () =>
    scopeAsync(async () => {
      const dst = full([3], 0);
      copyInto(dst, tensor(Int32Array.from([7, -2, 5]), [3], { dtype: 'i32' }));
      expect(await host(dst)).toEqual([7, -2, 5]);
      expect(() => copyInto(dst, tensor([1, 2]))).toThrow(/shapes differ: destination \[3\], source \[2\]/);
    }));

  it('f16: an odd-length window (not 4-byte aligned) does not touch its neighbours', ({ skip }) =>
    scopeAsync(async () => {
      if (!runtime().hasF16) skip(); // f16 needs the adapter feature shader-f16
      const big = full([8], -1, { dtype: 'f16' });
      copyInto(ops.narrow(big, 0, 1, 3), tensor([0.5, 1.5, 2.5], [3], { dtype: 'f16' }));
      expect(await host(big)).toEqual([-1, 0.5, 1.5, 2.5, -1, -1, -1, -1]);
    }));
});

describe('writeHost', () => {
  it('writes host values into a view, converting to its dtype, with clear errors', () =>
    scopeAsync(async () => {
      const big = full([6], 0);
      writeHost(ops.narrow(big, 0, 2, 3), Int32Array.from([4, 5, 6]));
      expect(await host(big)).toEqual([0, 0, 4, 5, 6, 0]);
      const ints = full([2], 0, { dtype: 'i32' });
      writeHost(ints, [3, -4]);
      expect(await host(ints)).toEqual([3, -4]);
      expect(() => writeHost(ints, [1.5, 2])).toThrow(/not an integer/);
      expect(() => writeHost(ints, [1, 2, 3])).toThrow(/3 values for a tensor of shape \[2\]/);
    }));
});

describe('users of the copy helpers', () => {
  it('loadStateDict keeps the parameter storage (host data and tensors); EMA.copyTo writes the average', () =>
    scopeAsync(async () => {
      const lin = new Linear(3, 2);
      const storage = lin.weight.storage;
      lin.loadStateDict({ weight: { shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) }, bias: tensor([7, 8]) });
      expect(lin.weight.storage).toBe(storage);
      expect(await host(lin.weight)).toEqual([1, 2, 3, 4, 5, 6]);
      expect(await host(lin.bias!)).toEqual([7, 8]);
      // A transposed (non-contiguous) source tensor is copied element by element.
      lin.loadStateDict({
        weight: ops.transpose(
          tensor([
            [1, 4],
            [2, 5],
            [3, 6],
          ]),
          0,
          1,
        ),
        bias: tensor([0, 0]),
      });
      expect(await host(lin.weight)).toEqual([1, 2, 3, 4, 5, 6]);
      const ema = new EMA(lin.parameters(), 0.5);
      lin.loadStateDict({ weight: full([2, 3], 3), bias: full([2], 1) });
      ema.update(); // ema = 0.5·ema + 0.5·θ
      ema.copyTo();
      expect(await host(lin.weight)).toEqual([2, 2.5, 3, 3.5, 4, 4.5]);
      expect(await host(lin.bias!)).toEqual([0.5, 0.5]);
      ema.dispose();
      lin.dispose();
    }));
});
