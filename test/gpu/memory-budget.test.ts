/**
 * The memory budget (issue #11): allocations beyond it are refused with GpuOutOfMemoryError
 * naming the request, the live and cached bytes and the largest live buffers — after the pool's
 * cached free buffers were released and the allocation retried once. The budget here comes from
 * RAE_MEMORY_LIMIT, read by init() like the other environment options.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryBudget, parseByteSize } from '../../src/gpu/buffer-pool.js';
import { GpuError, GpuOutOfMemoryError, InFlightLimitError } from '../../src/gpu/errors.js';
import { init, runtime } from '../../src/gpu/runtime.js';
import { toArray, zeros } from '../../src/tensor/creation.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { settleGarbage } from '../helpers/setup.js';

const MiB = 2 ** 20;
const LIMIT = 64 * MiB;

beforeAll(async () => {
  process.env.RAE_MEMORY_LIMIT = '64MiB';
  await init({ maxInFlightUploadBytes: 8 * MiB });
  await settleGarbage();
});

afterAll(() => {
  delete process.env.RAE_MEMORY_LIMIT;
});

function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected an error');
}

describe('memory budget', () => {
  it('RAE_MEMORY_LIMIT sets the budget', () => {
    expect(runtime().pool.limit).toBe(LIMIT);
    expect(runtime().stats().limit).toBe(LIMIT);
    expect(runtime().memoryLimitSource).toMatch(/RAE_MEMORY_LIMIT/);
  });

  it('allocating past the budget throws a one-line GpuOutOfMemoryError naming the request, live bytes and largest live tensors', async () => {
    const rt = runtime();
    await rt.sync();
    rt.pool.trim();
    const base = rt.stats().liveBytes;
    const kept: Tensor[] = [];
    const err = caught(() => {
      for (let i = 0; i < 200; i++) kept.push(zeros([256 * 1024])); // 1 MiB each
    });
    expect(err).toBeInstanceOf(GpuOutOfMemoryError);
    expect(err).toBeInstanceOf(GpuError);
    const e = err as GpuOutOfMemoryError;
    // Refused exactly when the next 1 MiB no longer fits.
    expect(base + kept.length * MiB).toBeLessThanOrEqual(LIMIT);
    expect(base + (kept.length + 1) * MiB).toBeGreaterThan(LIMIT);
    expect(e.source).toBe('budget');
    expect(e.requestedBytes).toBe(MiB);
    expect(e.label).toBe('tensor f32 [262144]');
    expect(e.limit).toBe(LIMIT);
    expect(e.liveBytes).toBe(rt.stats().liveBytes);
    expect(e.liveBytes).toBe(base + kept.length * MiB);
    expect(e.cachedBytes).toBe(0);
    expect(e.largest.length).toBeGreaterThan(0);
    expect(e.largest[0]).toEqual({ label: 'tensor f32 [262144]', bytes: MiB, count: kept.length });
    expect(e.message.split('\n')).toHaveLength(1);
    expect(e.message).toContain('1.0 MiB (1048576 bytes)');
    expect(e.message).toContain("for 'tensor f32 [262144]'");
    expect(e.message).toContain('budget of 64.0 MiB');
    expect(e.message).toContain(`largest live: tensor f32 [262144] 1.0 MiB × ${kept.length}`);
    expect(e.message).toMatch(/init\(\{ memoryLimit \}\) \/ RAE_MEMORY_LIMIT/);

    for (const t of kept) t.dispose();
    expect(rt.stats().liveBytes).toBe(base);
  });

  it('cached free buffers are released and the allocation retried before failing', async () => {
    const rt = runtime();
    await rt.sync();
    rt.pool.trim();
    const base = rt.stats().liveBytes;
    // Fill the pool's cache with 48 MiB of freed 1 MiB buffers.
    const small = Array.from({ length: 48 }, () => zeros([256 * 1024]));
    for (const t of small) t.dispose();
    rt.flush();
    expect(rt.stats().pooledBytes).toBe(48 * MiB);
    const created = rt.stats().created;
    // 32 MiB fits the budget only once the cache is gone.
    const big = zeros([8 * 1024 * 1024]);
    expect(rt.stats().pooledBytes).toBe(0);
    expect(rt.stats().liveBytes).toBe(base + 32 * MiB);
    expect(rt.stats().created).toBe(created + 1);
    // The retry released the cache: what is left over really does not fit.
    const err = caught(() => zeros([10 * 1024 * 1024]));
    expect(err).toBeInstanceOf(GpuOutOfMemoryError);
    expect((err as GpuOutOfMemoryError).largest[0]).toEqual({ label: 'tensor f32 [8388608]', bytes: 32 * MiB, count: 1 });
    big.dispose();
  });

  it('buffers released in the open batch are submitted, then released, when the budget needs them', async () => {
    const rt = runtime();
    await rt.sync();
    rt.pool.trim();
    const held = Array.from({ length: 40 }, () => zeros([256 * 1024]));
    for (const t of held) t.dispose(); // pending: the zero-fill that used them is not yet submitted
    expect(rt.stats().pooledBytes).toBe(40 * MiB);
    const submits = rt.counters.submits;
    const big = zeros([8 * 1024 * 1024]);
    expect(rt.counters.submits).toBe(submits + 1);
    expect(rt.stats().pooledBytes).toBe(0);
    expect(Array.from((await toArray(big)).subarray(0, 4))).toEqual([0, 0, 0, 0]);
    big.dispose();
  });

  it("the device's own out-of-memory errors become GpuOutOfMemoryError at the next call", async () => {
    const rt = runtime();
    const G = globalThis as unknown as Record<string, new (...args: unknown[]) => object>;
    const ev = new G.GPUUncapturedErrorEvent('uncapturederror', { error: new G.GPUOutOfMemoryError('synthetic refusal') });
    rt.device.dispatchEvent(ev as Event);
    const err = caught(() => rt.allocate(16, 'after-oom'));
    expect(err).toBeInstanceOf(GpuOutOfMemoryError);
    expect((err as GpuOutOfMemoryError).source).toBe('device');
    expect((err as Error).message).toMatch(/the WebGPU device reported 'synthetic refusal'/);
    // Reported once; the runtime works on.
    const b = rt.allocate(16, 'after-oom');
    rt.release(b);
    await rt.sync();
  });
});

describe('upload bytes in flight', () => {
  it('synchronous uploads beyond init({ maxInFlightUploadBytes }) are refused with advice; one large upload alone is not', async () => {
    const rt = runtime();
    await rt.sync();
    const b = rt.allocate(16 * MiB, 'upload-target');
    const mib = new Float32Array(MiB / 4).fill(1);
    let done = 0;
    const err = caught(() => {
      for (let i = 0; i < 20; i++) {
        rt.upload(b, mib);
        done++;
      }
    });
    expect(err).toBeInstanceOf(InFlightLimitError);
    expect((err as Error).message).toMatch(/bytes of uploads[\s\S]*yieldIfBusy/);
    expect(done).toBe(8);
    await rt.yieldIfBusy();
    expect(rt.inFlight.bytes).toBeLessThanOrEqual(MiB);
    await rt.sync();
    rt.upload(b, new Float32Array((12 * MiB) / 4).fill(2)); // more than the bound, but alone
    expect(Array.from(new Float32Array(await rt.read(b, 0, 8)))).toEqual([2, 2]);
    rt.release(b);
  });
});

describe('budget helpers', () => {
  it('parseByteSize reads bytes and binary units, and rejects garbage', () => {
    expect(parseByteSize('1048576')).toBe(MiB);
    expect(parseByteSize('64MiB')).toBe(64 * MiB);
    expect(parseByteSize('8G')).toBe(8 * 2 ** 30);
    expect(parseByteSize('1.5 GiB')).toBe(1.5 * 2 ** 30);
    expect(parseByteSize('512kb')).toBe(512 * 1024);
    expect(parseByteSize('none')).toBe(Number.POSITIVE_INFINITY);
    expect(() => parseByteSize('lots', 'RAE_MEMORY_LIMIT')).toThrow(/RAE_MEMORY_LIMIT: cannot read 'lots'/);
    expect(() => parseByteSize('0')).toThrow(/positive/);
    expect(() => parseByteSize('-5M')).toThrow(RangeError);
  });

  it('memoryBudget: explicit wins; software gets half the available host memory; GPUs none', () => {
    expect(memoryBudget(123 * MiB, true, 10 * 2 ** 30).limit).toBe(123 * MiB);
    expect(memoryBudget(undefined, true, 10 * 2 ** 30).limit).toBe(5 * 2 ** 30);
    const gpu = memoryBudget(undefined, false, 10 * 2 ** 30);
    expect(gpu.limit).toBe(Number.POSITIVE_INFINITY);
    expect(gpu.source).toMatch(/does not report/);
    expect(() => memoryBudget(-1, false, undefined)).toThrow(RangeError);
  });
});
