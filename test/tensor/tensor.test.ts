/** Tensors: creation, read-back, views, random generator, scopes and memory accounting, bad input. */
import { describe, expect, it } from 'vitest';
import '../../src/autograd/methods.js';
import { runtime } from '../../src/gpu/runtime.js';
import { arange, full, ones, rand, randint, randn, tensor, zeros, manualSeed } from '../../src/tensor/creation.js';
import { memoryStats, scope } from '../../src/tensor/scope.js';
import { requireFeature, settleGarbage, useGpu } from '../helpers/setup.js';

useGpu();

describe('creation and read-back', () => {
  it('tensor() from nested arrays, typed arrays and scalars', async () => {
    const a = tensor([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    expect(a.shape).toEqual([2, 3]);
    expect(Array.from(await a.toArray())).toEqual([1, 2, 3, 4, 5, 6]);
    const b = tensor(new Int32Array([7, -8]), [2]);
    expect(b.dtype).toBe('i32');
    expect(Array.from(await b.toArray())).toEqual([7, -8]);
    expect(await tensor(3.5).item()).toBe(3.5);
    const u = tensor([1, 2, 4000000000], [3], { dtype: 'u32' });
    expect(Array.from(await u.toArray())).toEqual([1, 2, 4000000000]);
  });

  it('zeros, ones, full, arange', async () => {
    expect(Array.from(await zeros([3]).toArray())).toEqual([0, 0, 0]);
    expect(Array.from(await ones([2], { dtype: 'i32' }).toArray())).toEqual([1, 1]);
    expect(Array.from(await full([2, 2], -1.5).toArray())).toEqual([-1.5, -1.5, -1.5, -1.5]);
    expect(Array.from(await arange(5).toArray())).toEqual([0, 1, 2, 3, 4]);
    expect(Array.from(await arange(1, 2, 0.25).toArray())).toEqual([1, 1.25, 1.5, 1.75]);
    expect(Array.from(await arange(10, 0, -3).toArray())).toEqual([10, 7, 4, 1]);
  });

  it('f16 tensors are refused with a clear error when the adapter lacks shader-f16', (ctx) => {
    ctx.skip(runtime().hasF16, 'the adapter has shader-f16');
    expect(() => tensor([1, 2], [2], { dtype: 'f16' })).toThrow(/shader-f16/);
  });

  it('f16 tensors round-trip through casts when the adapter has shader-f16', async (ctx) => {
    requireFeature(ctx, 'shader-f16');
    const h = tensor([1, -2.5, 65504, 0.1], [4], { dtype: 'f16' });
    expect(h.dtype).toBe('f16');
    const back = await h.toArray();
    expect(Array.from(back.slice(0, 3))).toEqual([1, -2.5, 65504]);
    expect(Math.abs(back[3] - 0.1)).toBeLessThan(1e-4);
    const f = h.to('f32').mul(2);
    expect(Array.from(await f.toArray()).slice(0, 2)).toEqual([2, -5]);
  });

  it('views: reshape, permute, transpose, slice, expand, cat, stack, contiguous', async () => {
    const x = arange(24, undefined, 1, { dtype: 'f32' }).reshape(2, 3, 4);
    expect(await x.permute(2, 0, 1).contiguous().tolist()).toEqual([
      [
        [0, 4, 8],
        [12, 16, 20],
      ],
      [
        [1, 5, 9],
        [13, 17, 21],
      ],
      [
        [2, 6, 10],
        [14, 18, 22],
      ],
      [
        [3, 7, 11],
        [15, 19, 23],
      ],
    ]);
    expect(Array.from(await x.slice(2, 1, 3).toArray())).toEqual([1, 2, 5, 6, 9, 10, 13, 14, 17, 18, 21, 22]);
    expect(Array.from(await tensor([1, 2]).reshape(2, 1).expand(2, 3).toArray())).toEqual([1, 1, 1, 2, 2, 2]);
    expect(x.T.shape).toEqual([2, 4, 3]);
    const { cat, stack } = await import('../../src/autograd/ops/shape.js');
    expect(Array.from(await cat([tensor([1, 2]), tensor([3])]).toArray())).toEqual([1, 2, 3]);
    expect(await stack([tensor([1, 2]), tensor([3, 4])], 1).tolist()).toEqual([
      [1, 3],
      [2, 4],
    ]);
  });
});

describe('random numbers', () => {
  it('randn with a seed is reproducible; statistics are right', async () => {
    const a = Array.from(await randn([4096], { seed: 7 }).toArray());
    const b = await randn([4096], { seed: 7 }).toArray();
    expect(Array.from(a)).toEqual(Array.from(b));
    const c = await randn([4096], { seed: 8 }).toArray();
    expect(Array.from(a)).not.toEqual(Array.from(c));
    const mean = a.reduce((s, v) => s + v, 0) / a.length;
    const v = a.reduce((s, x) => s + (x - mean) ** 2, 0) / a.length;
    // 4096 samples: standard error of the mean ≈ 0.016, of the variance ≈ 0.022.
    expect(Math.abs(mean)).toBeLessThan(0.06);
    expect(Math.abs(v - 1)).toBeLessThan(0.09);
  });

  it('rand in [0,1), randint in [low, high), global generator advances', async () => {
    const u = Array.from(await rand([10000], { seed: 1 }).toArray());
    expect(Math.min(...u)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...u)).toBeLessThan(1);
    expect(Math.abs(u.reduce((s, x) => s + x, 0) / u.length - 0.5)).toBeLessThan(0.02);
    const r = await randint(-3, 4, [5000], { seed: 2 }).toArray();
    const seen = new Set(r);
    expect([...seen].sort((p, q) => p - q)).toEqual([-3, -2, -1, 0, 1, 2, 3]);
    manualSeed(5);
    const g1 = await randn([8]).toArray();
    const g2 = await randn([8]).toArray();
    expect(Array.from(g1)).not.toEqual(Array.from(g2));
    manualSeed(5);
    expect(Array.from(await randn([8]).toArray())).toEqual(Array.from(g1));
  });
});

describe('memory', () => {
  it('scope disposes 1,000 temporaries and memoryStats returns to its baseline', async () => {
    const keep = randn([256], { seed: 3 });
    await settleGarbage();
    const before = memoryStats();
    const out = scope(() => {
      let acc = keep.mul(1);
      for (let i = 0; i < 1000; i++) acc = acc.add(keep).mul(0.5);
      return acc;
    });
    const mid = memoryStats();
    expect(mid.liveTensors).toBe(before.liveTensors + 1);
    expect(mid.liveBytes).toBe(before.liveBytes + 1024);
    await out.toArray();
    out.dispose();
    const after = memoryStats();
    expect(after.liveTensors).toBe(before.liveTensors);
    expect(after.liveBuffers).toBe(before.liveBuffers);
    expect(after.liveBytes).toBe(before.liveBytes);
    // A second identical scope is served from the pool: no new GPU buffers.
    const again = scope(() => {
      let acc = keep.mul(1);
      for (let i = 0; i < 1000; i++) acc = acc.add(keep).mul(0.5);
      return acc;
    });
    again.dispose();
    expect(memoryStats().buffersCreated).toBe(after.buffersCreated);
  });

  it('views keep storage alive until the last one is disposed', async () => {
    const x = tensor([1, 2, 3, 4]);
    const storage = x.storage;
    const v = x.reshape(2, 2);
    expect(storage.refs).toBe(2);
    x.dispose();
    expect(storage.refs).toBe(1);
    expect(await v.tolist()).toEqual([
      [1, 2],
      [3, 4],
    ]);
    v.dispose();
    expect(storage.refs).toBe(0);
  });
});

describe('bad input', () => {
  it('throws clear errors', async () => {
    expect(() => tensor([1, 2, 3], [2, 2])).toThrow(/data has 3 values but shape \[2, 2\] needs 4/);
    expect(() => zeros([2, -1])).toThrow(/invalid size -1/);
    expect(() => zeros([2.5])).toThrow(/invalid size 2.5/);
    expect(() => zeros([2], { dtype: 'f64' as never })).toThrow(/unknown dtype "f64"/);
    expect(() => tensor([1.5], [1], { dtype: 'i32' })).toThrow(/not an integer/);
    expect(() => tensor([[1, 2], [3]])).toThrow(/ragged/);
    const t = tensor([1, 2]);
    t.dispose();
    await expect(t.toArray()).rejects.toThrow(/disposed/);
    expect(() => t.add(1)).toThrow(/disposed/);
    expect(() => tensor([1, 2]).reshape(3)).toThrow(/reshape/);
    expect(() => tensor([1, 2]).backward()).toThrow(/does not require grad/);
  });
});
