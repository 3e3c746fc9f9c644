/**
 * reduceInto / varianceInto against float64 references (src/cpu on a gathered [outer, R, inner]
 * copy), over both workgroup-reduction flavours, both strategies (rows / columns), chunked and
 * unchunked R, strided / transposed / negative-stride / offset inputs, f16 input, NaN and ties.
 *
 * Tolerances: sum-like ops |err| ≤ 2e-6 · max Σ|x| over outputs + 1e-6 · |ref| (a pairwise bound
 * with room for the ≤ 64-long serial runs); max/min/argmax/argmin exact; variance rtol 1e-5 with
 * atol 1e-6 · max x²; the 10^6-element full sum within 1e-5 relative, as briefed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { argmax, max, mean, min, nd, sum, variance, type NDArray } from '../../src/cpu/index.js';
import { runtime } from '../../src/gpu/runtime.js';
import { reduceInto, setReductionMode, varianceInto, type ReduceLayout, type ReduceOp } from '../../src/kernels/reduce.js';
import { setRowStrategy } from '../../src/kernels/row-reduce.js';
import { tensor, toArray } from '../../src/tensor/creation.js';
import { empty, type Tensor, viewOf } from '../../src/tensor/tensor.js';
import type { View } from '../../src/kernels/view.js';
import { derived, expectAllclose, TOL } from '../helpers/compare.js';
import { randn, randomData } from '../helpers/random.js';
import { requireFeature, useGpu } from '../helpers/setup.js';

interface StridedLayout extends ReduceLayout {
  offset: number;
}

/** Gathers x (flat host data) into a contiguous float64 [outer, R, inner] NDArray. */
function gather(data: ArrayLike<number>, L: StridedLayout): NDArray {
  const out = new Float64Array(L.outer * L.R * L.inner);
  for (let o = 0; o < L.outer; o++)
    for (let r = 0; r < L.R; r++)
      for (let i = 0; i < L.inner; i++) out[(o * L.R + r) * L.inner + i] = data[L.offset + o * L.sOuter + r * L.sR + i * L.sInner];
  return nd(out, [L.outer, L.R, L.inner]);
}

function reference(g: NDArray, op: ReduceOp | 'var0' | 'var1' | 'var2'): Float64Array {
  const neg = nd(
    g.data.map((v) => -v),
    g.shape,
  );
  switch (op) {
    case 'sum':
      return sum(g, 1).data;
    case 'mean':
      return mean(g, 1).data;
    case 'max':
      return max(g, 1).data;
    case 'min':
      return min(g, 1).data;
    case 'argmax':
      return argmax(g, 1).data;
    case 'argmin':
      return argmax(neg, 1).data; // NaN counts as the extreme either way, first occurrence wins
    case 'sumsq':
      return sum(
        nd(
          g.data.map((v) => v * v),
          g.shape,
        ),
        1,
      ).data;
    case 'var0':
      return variance(g, 1, { correction: 0 }).data;
    case 'var1':
      return variance(g, 1, { correction: 1 }).data;
    case 'var2':
      return variance(g, 1, { correction: 2 }).data;
  }
}

/** Σ|x| (or Σx²) per output, for the error bound of sum-like ops. */
function absScale(g: NDArray, squared: boolean): number {
  const [outer, R, inner] = g.shape;
  let worst = 0;
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) {
      let s = 0;
      for (let r = 0; r < R; r++) {
        const v = g.data[(o * R + r) * inner + i];
        s += squared ? v * v : Math.abs(v);
      }
      worst = Math.max(worst, s);
    }
  return worst;
}

const ALL_OPS: (ReduceOp | 'var0' | 'var1' | 'var2')[] = ['sum', 'mean', 'max', 'min', 'argmax', 'argmin', 'sumsq', 'var0', 'var1', 'var2'];

/** Runs every op on one strided input and checks each against float64. */
async function checkAll(t: Tensor, host: ArrayLike<number>, L: StridedLayout, label: string, ops = ALL_OPS): Promise<void> {
  const g = gather(host, L);
  // The kernel takes the start offset from the View; the layout carries the strides.
  const x: View = { buffer: t.buffer, dtype: t.dtype, shape: t.shape, strides: t.strides, offset: L.offset };
  const n = L.outer * L.inner;
  const outs = ops.map((op) => {
    const out = empty([n], op === 'argmax' || op === 'argmin' ? 'i32' : 'f32');
    if (op.startsWith('var')) varianceInto(x, L, out, Number(op.slice(3)));
    else reduceInto(x, L, out, op as ReduceOp);
    return out;
  });
  for (let k = 0; k < ops.length; k++) {
    const op = ops[k];
    const got = await toArray(outs[k]);
    outs[k].dispose();
    const want = reference(g, op);
    const opts = { label: `${label} ${op} [${L.outer},${L.R},${L.inner}]` };
    if (op === 'sum' || op === 'sumsq' || op === 'mean') {
      const scale = absScale(g, op === 'sumsq') / (op === 'mean' ? Math.max(1, L.R) : 1);
      expectAllclose(got, want, TOL.f32Reduction, { ...opts, scale });
    } else if (op.startsWith('var')) {
      expectAllclose(got, want, derived({ atol: 1e-6 * (absScale(g, true) / Math.max(1, L.R)), rtol: 1e-5 }), opts);
    } else {
      expectAllclose(got, want, TOL.exact, opts);
    }
  }
}

useGpu();
afterAll(() => {
  setReductionMode('auto');
  setRowStrategy('auto');
});

// One workgroup per row under each reduction flavour, and one row per invocation (no reductions).
const modes = ['tree', 'subgroup', 'subgroup-fallback', 'row per thread'] as const;

describe.each(modes)('reduce (%s)', (mode) => {
  beforeAll(() => {
    setRowStrategy(mode === 'row per thread' ? 'thread' : 'workgroup');
    if (mode === 'row per thread') setReductionMode('auto');
    else if (mode === 'tree' || runtime().features.has('subgroups')) setReductionMode(mode);
  });

  it.for([1, 7, 65, 257, 1000, 5000])('inner == 1 (rows strategy, chunked when long), R = %i', async (R, ctx) => {
    if (mode === 'subgroup' || mode === 'subgroup-fallback') requireFeature(ctx, 'subgroups');
    const outer = 7;
    const host = randn(outer * R, R);
    const x = tensor(host, [outer, R]);
    await checkAll(x, host, { outer, R, inner: 1, sOuter: R, sR: 1, sInner: 1, offset: 0 }, 'inner1');
    x.dispose();
  });

  it.for([
    [3, 1, 5],
    [3, 7, 5],
    [3, 65, 5],
    [2, 257, 3],
    [2, 7, 65],
    [2, 257, 65],
    [1, 1000, 127],
  ])('inner > 1, [outer, R, inner] = [%i, %i, %i]', async ([outer, R, inner], ctx) => {
    if (mode === 'subgroup' || mode === 'subgroup-fallback') requireFeature(ctx, 'subgroups');
    const host = randn(outer * R * inner, outer * 1000 + R + inner);
    const x = tensor(host, [outer, R, inner]);
    await checkAll(x, host, { outer, R, inner, sOuter: R * inner, sR: inner, sInner: 1, offset: 0 }, 'inner>1');
    x.dispose();
  });

  it('strided inputs: transposed views, an offset slice, a negative stride', async (ctx) => {
    if (mode === 'subgroup' || mode === 'subgroup-fallback') requireFeature(ctx, 'subgroups');
    const A = 65;
    const B = 37;
    const host = randn(A * B + 11, 99);
    const x = tensor(host, [A * B + 11]);
    // x as a contiguous [A, B] matrix, read through its transpose [B, A] (strides [1, B]).
    await checkAll(x, host, { outer: B, R: A, inner: 1, sOuter: 1, sR: B, sInner: 1, offset: 0 }, 'transpose, reduce dim 1');
    await checkAll(x, host, { outer: 1, R: B, inner: A, sOuter: 0, sR: 1, sInner: B, offset: 0 }, 'transpose, reduce dim 0');
    // An interior slice starting at element 11 with a stride-2 reduced axis.
    await checkAll(x, host, { outer: 3, R: 300, inner: 1, sOuter: 700, sR: 2, sInner: 1, offset: 11 }, 'offset slice');
    // A flipped axis: the reduced axis walks backwards from the end.
    await checkAll(x, host, { outer: 1, R: A * B, inner: 1, sOuter: 0, sR: -1, sInner: 1, offset: A * B + 10 }, 'flipped');
    await checkAll(x, host, { outer: 4, R: 9, inner: 30, sOuter: 1, sR: -40, sInner: 41, offset: 400 }, 'mixed negative strides');
    x.dispose();
  });

  it('a view through Tensor metadata (viewOf) reduces the same way', async (ctx) => {
    if (mode === 'subgroup' || mode === 'subgroup-fallback') requireFeature(ctx, 'subgroups');
    const host = randn(7 * 65, 5);
    const base = tensor(host, [7, 65]);
    const t = viewOf(base, [65, 7], [1, 65], 0); // transpose
    const out = empty([65]);
    reduceInto(t, { outer: 65, R: 7, inner: 1, sOuter: 1, sR: 65, sInner: 1 }, out, 'sum');
    const got = await toArray(out);
    const want = sum(gather(host, { outer: 65, R: 7, inner: 1, sOuter: 1, sR: 65, sInner: 1, offset: 0 }), 1).data;
    expectAllclose(got, want, derived({ atol: 1e-5, rtol: 1e-6 }), { label: 'transposed view sum' });
    [base, t, out].forEach((v) => v.dispose());
  });

  it('10^6-element full sum is two-pass and within 1e-5 relative of float64', async (ctx) => {
    if (mode === 'subgroup' || mode === 'subgroup-fallback') requireFeature(ctx, 'subgroups');
    const N = 1_000_000;
    for (const [name, host] of [
      ['normal', randn(N, 1234)],
      ['uniform', Float32Array.from(randomData(N, 77, 0, 1))],
    ] as const) {
      const x = tensor(host, [N]);
      const outs = (['sum', 'mean', 'sumsq', 'max', 'argmax'] as const).map(
        (op) => [op, empty([1], op === 'argmax' ? 'i32' : 'f32')] as const,
      );
      const before = runtime().counters.dispatches;
      reduceInto(x, { outer: 1, R: N, inner: 1, sOuter: N, sR: 1, sInner: 1 }, outs[0][1], 'sum');
      expect(runtime().counters.dispatches - before, 'chunk partials, then their reduction').toBeGreaterThanOrEqual(2);
      for (const [op, out] of outs.slice(1)) reduceInto(x, { outer: 1, R: N, inner: 1, sOuter: N, sR: 1, sInner: 1 }, out, op);
      const v = empty([1]);
      varianceInto(x, { outer: 1, R: N, inner: 1, sOuter: N, sR: 1, sInner: 1 }, v, 1);
      const g = nd(Float64Array.from(host), [1, N, 1]);
      for (const [op, out] of outs) {
        const got = (await toArray(out))[0];
        const want = reference(g, op)[0];
        if (op === 'max' || op === 'argmax') expect(got, `${name} ${op}`).toBe(want);
        else expect(Math.abs(got - want) / Math.abs(want), `${name} ${op}: got ${got}, want ${want}`).toBeLessThan(1e-5);
        out.dispose();
      }
      const gotVar = (await toArray(v))[0];
      const wantVar = variance(g, 1).data[0];
      expect(Math.abs(gotVar - wantVar) / wantVar, `${name} var`).toBeLessThan(1e-5);
      v.dispose();
      x.dispose();
    }
  });

  it('ties go to the first index; NaN propagates through max/min and wins argmax/argmin', async (ctx) => {
    if (mode === 'subgroup' || mode === 'subgroup-fallback') requireFeature(ctx, 'subgroups');
    const R = 300;
    const rows = 4;
    const host = new Float32Array(rows * R);
    for (let i = 0; i < host.length; i++) host[i] = (i * 7919) % 13; // many ties at the max 12 and min 0
    host[1 * R + 250] = NaN; // row 1: one NaN late
    host[2 * R + 5] = NaN; // row 2: two NaNs, the first wins
    host[2 * R + 200] = NaN;
    host[3 * R + 100] = Infinity; // row 3: ±inf
    host[3 * R + 120] = -Infinity;
    const x = tensor(host, [rows, R]);
    await checkAll(x, host, { outer: rows, R, inner: 1, sOuter: R, sR: 1, sInner: 1, offset: 0 }, 'ties/NaN', [
      'max',
      'min',
      'argmax',
      'argmin',
    ]);
    // Same data read column-wise (columns strategy).
    await checkAll(x, host, { outer: 1, R: rows, inner: R, sOuter: 0, sR: R, sInner: 1, offset: 0 }, 'ties/NaN columns', [
      'max',
      'min',
      'argmax',
      'argmin',
    ]);
    x.dispose();
  });
});

describe('reduce edge cases', () => {
  it('empty R: sum 0, mean NaN, var NaN; max throws; R = 1 variance with correction 1 is NaN', async () => {
    const x = tensor(new Float32Array([1, 2, 3]), [3]);
    const outs = ['sum', 'mean', 'sumsq'].map(() => empty([3]));
    (['sum', 'mean', 'sumsq'] as const).forEach((op, k) =>
      reduceInto(x, { outer: 3, R: 0, inner: 1, sOuter: 1, sR: 1, sInner: 1 }, outs[k], op),
    );
    expect(Array.from(await toArray(outs[0]))).toEqual([0, 0, 0]);
    expect(Array.from(await toArray(outs[1])).every(Number.isNaN)).toBe(true);
    expect(Array.from(await toArray(outs[2]))).toEqual([0, 0, 0]);
    expect(() => reduceInto(x, { outer: 3, R: 0, inner: 1, sOuter: 1, sR: 1, sInner: 1 }, outs[0], 'max')).toThrow(/empty/);
    const v = empty([3]);
    varianceInto(x, { outer: 3, R: 1, inner: 1, sOuter: 1, sR: 1, sInner: 1 }, v, 1);
    expect(Array.from(await toArray(v)).every(Number.isNaN)).toBe(true);
    const v1 = empty([1]);
    varianceInto(x, { outer: 1, R: 3, inner: 1, sOuter: 3, sR: 1, sInner: 1 }, v1, 3); // divisor 0, deviations > 0: inf
    expect((await toArray(v1))[0]).toBe(Infinity);
    varianceInto(x, { outer: 1, R: 0, inner: 1, sOuter: 3, sR: 1, sInner: 1 }, v1, 1);
    expect(Number.isNaN((await toArray(v1))[0])).toBe(true);
    [x, v, v1, ...outs].forEach((t) => t.dispose());
  });

  it('f16 input (computed in f32) and f16 output', async (ctx) => {
    requireFeature(ctx, 'shader-f16');
    const R = 1000;
    const host = randn(3 * R, 3);
    const x = tensor(host, [3, R], { dtype: 'f16' });
    const rounded = await toArray(x); // the f16 values the kernel sees, as f32
    await checkAll(x, rounded, { outer: 3, R, inner: 1, sOuter: R, sR: 1, sInner: 1, offset: 0 }, 'f16 in');
    const out16 = empty([3], 'f16');
    reduceInto(x, { outer: 3, R, inner: 1, sOuter: R, sR: 1, sInner: 1 }, out16, 'mean');
    const got = await toArray(out16);
    const want = mean(gather(rounded, { outer: 3, R, inner: 1, sOuter: R, sR: 1, sInner: 1, offset: 0 }), 1).data;
    // f16 output rounding: 2^-11 relative.
    expectAllclose(got, want, TOL.f16, { label: 'f16 out mean', tighten: { atol: 1e-4, rtol: 1e-3 } });
    x.dispose();
    out16.dispose();
  });

  it('more outputs than one grid dimension holds (2-D launch of the rows strategy)', async () => {
    const outer = 70_000;
    const R = 17;
    const host = randn(outer * R, 23);
    const x = tensor(host, [outer, R]);
    await checkAll(x, host, { outer, R, inner: 1, sOuter: R, sR: 1, sInner: 1, offset: 0 }, '70000 rows', ['sum', 'argmax']);
    x.dispose();
  });

  it('columns with a few chunks of R (bias gradients: [1000, 40], [300, 70] over R) in one dispatch', async () => {
    for (const [R, inner, outer] of [
      [1000, 40, 1],
      [300, 70, 2],
    ]) {
      const host = randn(outer * R * inner, R + inner);
      const x = tensor(host, [outer, R, inner]);
      const L = { outer, R, inner, sOuter: R * inner, sR: inner, sInner: 1, offset: 0 };
      const out = empty([outer * inner]);
      const before = runtime().counters.dispatches;
      reduceInto(x, L, out, 'sum');
      expect(runtime().counters.dispatches - before, 'partials combined in the workgroup').toBe(1);
      out.dispose();
      await checkAll(x, host, L, 'columns in one workgroup', ['sum', 'mean', 'max', 'min', 'sumsq', 'var1']);
      x.dispose();
    }
  });

  it('rejects bad outputs and returns every scratch buffer to the pool', async () => {
    const x = tensor(randn(70_000, 1), [70_000]);
    const bad = empty([2]);
    expect(() => reduceInto(x, { outer: 1, R: 70_000, inner: 1, sOuter: 0, sR: 1, sInner: 1 }, bad, 'sum')).toThrow(/contiguous/);
    expect(() => reduceInto(x, { outer: 2, R: 35_000, inner: 1, sOuter: 35_000, sR: 1, sInner: 1 }, bad, 'argmax')).toThrow(/i32/);
    const out = empty([1]);
    const idx = empty([2], 'i32');
    await runtime().sync();
    const baseline = runtime().stats().liveBuffers;
    reduceInto(x, { outer: 1, R: 70_000, inner: 1, sOuter: 0, sR: 1, sInner: 1 }, out, 'sum');
    reduceInto(x, { outer: 2, R: 35_000, inner: 1, sOuter: 35_000, sR: 1, sInner: 1 }, idx, 'argmin');
    varianceInto(x, { outer: 1, R: 70_000, inner: 1, sOuter: 0, sR: 1, sInner: 1 }, out, 1);
    await runtime().sync();
    expect(runtime().stats().liveBuffers).toBeLessThanOrEqual(baseline); // ≤: finalizers may free dropped tensors meanwhile
    [x, bad, out, idx].forEach((t) => t.dispose());
  });
});
