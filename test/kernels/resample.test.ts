/**
 * GPU resampling vs the float64 CPU oracle (src/cpu/resample.ts, PyTorch semantics) and vs the
 * PyTorch golden vector. The oracle is run with float32Coords (PyTorch's float32 coordinates and
 * weights, float64 sums), so the only difference left is the GPU's f32 accumulation: tolerance
 * 1e-5 relative to the largest |expected| (the worst element is reported).
 */
import { describe, expect, it } from 'vitest';
import { interpolate, nd } from '../../src/cpu/index.js';
import { runtime } from '../../src/gpu/runtime.js';
import { openSafetensors } from '../../src/io/safetensors.js';
import {
  axisTaps,
  interpolateInto,
  releaseResampleTables,
  resampleTableCount,
  type ResampleMode,
  type ResampleOptions,
} from '../../src/kernels/resample.js';
import { tensor, toArray } from '../../src/tensor/creation.js';
import { empty, viewOf, type Tensor } from '../../src/tensor/tensor.js';
import { expectAllclose, maxAbs, TOL } from '../helpers/compare.js';
import { goldenPath } from '../helpers/golden.js';
import { randomData } from '../helpers/random.js';
import { requireFeature, settleGarbage, useGpu } from '../helpers/setup.js';

useGpu();

/** Deterministic values in [-1, 1) with some smooth structure plus noise. */
function pseudoRandom(n: number, seed: number): Float32Array {
  const noise = randomData(n, seed);
  return Float32Array.from(noise, (u, i) => 0.5 * Math.sin(i * 0.37 + seed) + 0.5 * u);
}

async function gpuInterpolate(x: Tensor, size: [number, number], mode: ResampleMode, opts: ResampleOptions = {}): Promise<Float32Array> {
  const out = empty([x.shape[0], x.shape[1], size[0], size[1]]);
  interpolateInto(x, out, mode, opts);
  const data = (await toArray(out)) as Float32Array;
  out.dispose();
  return data;
}

async function check(
  shape: [number, number, number, number],
  size: [number, number],
  mode: ResampleMode,
  opts: ResampleOptions = {},
  seed = 1,
): Promise<void> {
  const data = pseudoRandom(
    shape.reduce((a, b) => a * b, 1),
    seed,
  );
  const x = tensor(data, shape);
  const got = await gpuInterpolate(x, size, mode, opts);
  x.dispose();
  const want = interpolate(nd(data, shape), size, mode, { ...opts, float32Coords: true });
  expectAllclose(got, want.data, TOL.resample, {
    shape: want.shape,
    label: `${mode} [${shape.join(',')}] -> [${size.join(',')}] ${JSON.stringify(opts)}`,
  });
}

describe('resample taps', () => {
  it('plain taps sum to 1 and stay in range', () => {
    for (const [i, o] of [
      [256, 224],
      [5, 11],
      [37, 16],
      [1, 4],
      [4, 1],
    ]) {
      for (const mode of ['bilinear', 'bicubic'] as const) {
        for (const alignCorners of [false, true]) {
          for (const antialias of [false, true]) {
            const t = axisTaps(i, o, mode, { alignCorners, antialias });
            for (let p = 0; p < o; p++) {
              let s = 0;
              for (let k = 0; k < t.k; k++) {
                expect(t.index[p * t.k + k]).toBeGreaterThanOrEqual(0);
                expect(t.index[p * t.k + k]).toBeLessThan(i);
                s += t.weight[p * t.k + k];
              }
              expect(Math.abs(s - 1)).toBeLessThan(1e-5);
            }
          }
        }
      }
    }
  });

  it('37 -> 16 antialiased bicubic spans the PIL support 2·2·37/16 = 9.25 px (10 taps)', () => {
    expect(axisTaps(37, 16, 'bicubic', { antialias: true }).k).toBe(10);
    expect(axisTaps(37, 16, 'bilinear', { antialias: true }).k).toBeLessThanOrEqual(7);
  });
});

describe('interpolateInto (plain)', () => {
  it('bilinear upsampling, non-square', () => check([2, 3, 5, 7], [11, 13], 'bilinear'));
  it('bilinear downsampling, non-square', () => check([1, 2, 17, 23], [6, 9], 'bilinear'));
  it('bilinear mixed (up in H, down in W) and same-size axis', () => check([2, 2, 6, 19], [13, 19], 'bilinear'));
  it('bicubic upsampling, non-square', () => check([2, 3, 5, 7], [12, 10], 'bicubic'));
  it('bicubic downsampling, non-square', () => check([1, 3, 29, 21], [11, 8], 'bicubic'));
  it('bicubic 14 -> 16 (ViTMAE position table)', () => check([1, 8, 14, 14], [16, 16], 'bicubic'));
  it('bicubic 256 -> 224 (RAE encoder input resize)', () => check([1, 2, 256, 256], [224, 224], 'bicubic', {}, 3));
  it('align_corners=true, bilinear and bicubic', async () => {
    await check([2, 2, 6, 9], [13, 5], 'bilinear', { alignCorners: true });
    await check([2, 2, 6, 9], [13, 5], 'bicubic', { alignCorners: true });
    await check([1, 1, 6, 9], [1, 1], 'bicubic', { alignCorners: true });
  });
  it('1-pixel inputs and outputs', async () => {
    await check([1, 2, 1, 1], [3, 4], 'bicubic');
    await check([1, 2, 5, 4], [1, 1], 'bilinear');
  });
});

describe('interpolateInto (antialias)', () => {
  it('37 -> 16 bicubic on a permuted [1, 37, 37, D] table (DINOv2 position embedding)', async () => {
    const d = 12;
    const s = 37;
    const data = pseudoRandom(s * s * d, 5);
    // Stored as [1, 37, 37, D] (token-major), viewed as [1, D, 37, 37] without a copy.
    const base = tensor(data, [1, s, s, d]);
    const x = viewOf(base, [1, d, s, s], [s * s * d, 1, s * d, d], 0);
    const got = await gpuInterpolate(x, [16, 16], 'bicubic', { antialias: true });
    const nchw = new Float64Array(d * s * s);
    for (let c = 0; c < d; c++)
      for (let h = 0; h < s; h++) for (let w = 0; w < s; w++) nchw[(c * s + h) * s + w] = data[(h * s + w) * d + c];
    const want = interpolate(nd(nchw, [1, d, s, s]), [16, 16], 'bicubic', { antialias: true, float32Coords: true });
    expectAllclose(got, want.data, TOL.resample, { shape: want.shape, label: 'aa bicubic 37->16' });
    x.dispose();
    base.dispose();
  });
  it('bilinear downsampling, non-square', () => check([2, 3, 23, 17], [7, 6], 'bilinear', { antialias: true }));
  it('bicubic downsampling, non-square, large factor', () => check([1, 2, 64, 45], [5, 9], 'bicubic', { antialias: true }));
  it('only one axis changes size (single pass)', async () => {
    await check([1, 2, 19, 13], [19, 5], 'bicubic', { antialias: true });
    await check([1, 2, 19, 13], [7, 13], 'bilinear', { antialias: true });
    await check([1, 2, 9, 13], [9, 13], 'bicubic', { antialias: true });
  });
  it('upsampling uses the a = -0.5 filter, like PyTorch', () => check([1, 2, 7, 5], [12, 11], 'bicubic', { antialias: true }));
  it('align_corners=true with antialias', () => check([1, 2, 23, 17], [6, 7], 'bicubic', { antialias: true, alignCorners: true }));
  it('256 -> 224 bicubic antialiased', () => check([1, 1, 256, 256], [224, 224], 'bicubic', { antialias: true }, 9));
});

describe('interpolateInto (runtime behaviour)', () => {
  it('repeated calls reuse cached tap tables and pipelines (no uploads, no compiles)', async () => {
    const rt = runtime();
    const x = tensor(pseudoRandom(2 * 3 * 32 * 32, 2), [2, 3, 32, 32]);
    const out = empty([2, 3, 28, 28]);
    interpolateInto(x, out, 'bicubic');
    interpolateInto(x, out, 'bicubic', { antialias: true });
    const uploads = rt.counters.uploads;
    const pipelines = rt.pipelines.size;
    await settleGarbage();
    const before = rt.stats().liveBuffers;
    for (let i = 0; i < 3; i++) {
      interpolateInto(x, out, 'bicubic');
      interpolateInto(x, out, 'bicubic', { antialias: true });
    }
    await rt.sync();
    expect(rt.counters.uploads).toBe(uploads);
    expect(rt.pipelines.size).toBe(pipelines);
    expect(rt.stats().liveBuffers).toBe(before); // the antialias scratch goes back to the pool
    x.dispose();
    out.dispose();
  });

  it('writes into a strided output view', async () => {
    const data = pseudoRandom(2 * 2 * 9 * 7, 4);
    const x = tensor(data, [2, 2, 9, 7]);
    // out stored as [B, h, w, C], viewed as [B, C, h, w]
    const store = empty([2, 5, 4, 2]);
    const out = viewOf(store, [2, 2, 5, 4], [40, 1, 8, 2], 0);
    interpolateInto(x, out, 'bilinear');
    const got = await toArray(out);
    const want = interpolate(nd(data, [2, 2, 9, 7]), [5, 4], 'bilinear', { float32Coords: true });
    expectAllclose(got, want.data, TOL.resample, { shape: want.shape, label: 'strided out' });
    for (const t of [x, out, store]) t.dispose();
  });

  it('f16 input and output (when the adapter has shader-f16)', async (ctx) => {
    requireFeature(ctx, 'shader-f16');
    const data = pseudoRandom(1 * 2 * 12 * 10, 6);
    const x = tensor(data, [1, 2, 12, 10], { dtype: 'f16' });
    const out = empty([1, 2, 7, 15], 'f16');
    interpolateInto(x, out, 'bicubic');
    const got = await toArray(out);
    const rounded = Float64Array.from(await toArray(x));
    const want = interpolate(nd(rounded, [1, 2, 12, 10]), [7, 15], 'bicubic', { float32Coords: true });
    // One f16 rounding of the output: 2e-3 of the largest value (never more than TOL.f16's atol).
    expectAllclose(got, want.data, TOL.f16, {
      shape: want.shape,
      label: 'f16',
      tighten: { atol: 2e-3 * Math.min(1, maxAbs(want.data)), rtol: 0 },
    });
    x.dispose();
    out.dispose();
  });

  it('releaseResampleTables returns the cached tables to the pool', async () => {
    const rt = runtime();
    const x = tensor(pseudoRandom(3 * 3, 1), [1, 1, 3, 3]);
    const out = empty([1, 1, 5, 5]);
    interpolateInto(x, out, 'bilinear', { alignCorners: true });
    await rt.sync();
    const live = rt.stats().liveBuffers;
    expect(resampleTableCount()).toBeGreaterThan(0);
    releaseResampleTables();
    expect(resampleTableCount()).toBe(0);
    expect(rt.stats().liveBuffers).toBeLessThan(live);
    x.dispose();
    out.dispose();
  });
});

describe('golden: PyTorch bicubic 256 -> 224', () => {
  it('input.image256 -> output.resized224 to 1e-5 relative-by-max', async () => {
    const st = openSafetensors(goldenPath('dinov2_reg_small'));
    const img = st.read('input.image256');
    const ref = st.read('output.resized224');
    st.close();
    const [b, c] = img.shape;
    const x = tensor(Float32Array.from(img.data as ArrayLike<number>), img.shape);
    const got = await gpuInterpolate(x, [224, 224], 'bicubic');
    x.dispose();
    expect([b, c, 224, 224]).toEqual(ref.shape);
    const r = expectAllclose(got, ref.data as ArrayLike<number>, TOL.resample, { shape: ref.shape, label: 'resized224 vs PyTorch' });
    console.log(r.message);
  });
});
