/** The GPU runtime: pool reuse after submit, batching, errors that name the op, device loss. */
import { describe, expect, it } from 'vitest';
import { bucketSize } from '../../src/gpu/buffer-pool.js';
import { runtime } from '../../src/gpu/runtime.js';
import { randn, tensor, toArray } from '../../src/tensor/creation.js';
import { useGpu } from '../helpers/setup.js';
import '../../src/autograd/methods.js';

useGpu();

describe('buffer pool', () => {
  it('buckets waste at most 25 %', () => {
    for (const n of [1, 255, 256, 257, 1000, 4097, 123457, 1 << 20, (1 << 20) + 1]) {
      const b = bucketSize(n);
      expect(b).toBeGreaterThanOrEqual(n);
      expect(b).toBeLessThanOrEqual(Math.max(256, n * 1.25));
    }
  });

  it('a released buffer is reused only after the batch that used it is submitted', async () => {
    const rt = runtime();
    await rt.sync();
    const a = rt.allocate(4096);
    rt.release(a);
    const b = rt.allocate(4096);
    expect(b).not.toBe(a); // same batch: not reusable yet
    rt.flush();
    const c = rt.allocate(4096);
    expect(c).toBe(a);
    rt.release(b);
    rt.release(c);
  });

  it('an upload recorded after a pending write to the same buffer lands last', async () => {
    const x = randn([1000], { seed: 4 }); // pending random fill (not yet submitted)
    runtime().upload(x.buffer, new Float32Array(1000).fill(7));
    expect(Array.from(await toArray(x)).every((v) => v === 7)).toBe(true);
  });
});

describe('batching', () => {
  it('records many dispatches per submit and never syncs per op', async () => {
    const rt = runtime();
    await rt.sync();
    const s0 = rt.counters.submits;
    const d0 = rt.counters.dispatches;
    let x = tensor([1, 2, 3]);
    for (let i = 0; i < 300; i++) {
      const y = x.add(1);
      x.dispose();
      x = y;
    }
    expect(rt.counters.submits - s0).toBeLessThanOrEqual(Math.ceil(300 / rt.maxDispatchesPerSubmit));
    expect(Array.from(await x.toArray())).toEqual([301, 302, 303]);
    expect(rt.counters.dispatches - d0).toBe(300);
  });
});

describe('errors', () => {
  it('a shader that fails to compile is reported with the kernel name and numbered source', async () => {
    const rt = runtime();
    const out = rt.allocate(16);
    rt.dispatch(
      {
        key: 'broken-kernel-test',
        bindings: ['write'],
        wgsl: () =>
          '@group(0) @binding(0) var<storage, read_write> o: array<f32>;\n@compute @workgroup_size(1) fn main() { o[0] = undefined_thing; }',
      },
      [out],
      [1],
    );
    await expect(rt.sync()).rejects.toThrow(/kernel 'broken-kernel-test': [\s\S]*undefined_thing[\s\S]* {3}2\| @compute/);
    rt.release(out);
  });

  it('an allocation beyond the adapter limit throws a RangeError naming the size', () => {
    const rt = runtime();
    expect(() => rt.allocate(rt.limits.maxBufferSize * 2, 'huge')).toThrow(/huge: .* exceeds the adapter's maxBufferSize/);
  });
});
