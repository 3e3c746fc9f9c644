/**
 * LayerNorm / RMSNorm forward and backward against float64: the forward against src/cpu
 * layerNorm / rmsNorm (plus float64 mean and rstd), the backward against float64 analytic
 * gradients derived here, and a finite-difference check of those on a tiny case. Shapes rows ∈
 * {1, 7, 65} × D ∈ {1, 7, 64, 257, 1000}, with and without affine parameters, over every
 * workgroup-reduction flavour.
 *
 * Tolerances (f32 compute): y, mean: atol 1e-5·max|ref| + rtol 1e-5; rstd rtol 1e-5 (2e-5 for
 * rstd ≈ 1/sqrt(eps) rows, D = 1); dx: atol 2e-5 · the size of the cancelling terms (see grads); dweight/dbias (column sums over up to
 * 65 rows): atol 2e-5·Σ_rows|term| per column; finite differences atol 1e-6 on float64 only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { layerNorm, nd, numericalVjp, rmsNorm, type NDArray } from '../../src/cpu/index.js';
import { runtime } from '../../src/gpu/runtime.js';
import { layerNormBackwardInto, layerNormInto, rmsNormBackwardInto, rmsNormInto } from '../../src/kernels/norm.js';
import { setReductionMode } from '../../src/kernels/reduce.js';
import { setRowStrategy } from '../../src/kernels/row-reduce.js';
import { tensor, toArray } from '../../src/tensor/creation.js';
import { empty, type Tensor } from '../../src/tensor/tensor.js';
import { derived, expectAllclose, TOL } from '../helpers/compare.js';
import { randn } from '../helpers/random.js';
import { requireFeature, useGpu } from '../helpers/setup.js';

const f64 = (a: ArrayLike<number>, shape: number[]): NDArray => nd(Float64Array.from(a), shape);
const maxAbs = (a: ArrayLike<number>) => Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);

async function read(t: Tensor): Promise<Float32Array> {
  const a = (await toArray(t)) as Float32Array;
  t.dispose();
  return a;
}

/** Float64 statistics: mean (0 for RMS) and rstd per row. */
function stats(x: ArrayLike<number>, rows: number, D: number, eps: number, rms: boolean) {
  const mu = new Float64Array(rows);
  const rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let m = 0;
    if (!rms) {
      for (let j = 0; j < D; j++) m += x[r * D + j];
      m /= D;
    }
    let v = 0;
    for (let j = 0; j < D; j++) v += (x[r * D + j] - m) ** 2;
    mu[r] = m;
    rstd[r] = 1 / Math.sqrt(v / D + eps);
  }
  return { mu, rstd };
}

/**
 * Float64 gradients with x̂ = (x − μ)·rstd, g = dy·w:
 *   dx = rstd·(g − [LN] mean(g) − x̂·mean(g·x̂)), dw = Σ_rows dy·x̂, db = Σ_rows dy;
 * also the scales that bound f32 rounding: max rstd·(|g| + |mean g| + |x̂·mean(g·x̂)|) for dx (the
 * terms cancel almost completely when D = 1, where dx = rstd·g·eps/(x² + eps) for RMSNorm), and
 * the per-column Σ|dy·x̂| and Σ|dy| for the column sums.
 */
function grads(
  x: ArrayLike<number>,
  w: ArrayLike<number> | null,
  dy: ArrayLike<number>,
  rows: number,
  D: number,
  eps: number,
  rms: boolean,
) {
  const { mu, rstd } = stats(x, rows, D, eps, rms);
  const dx = new Float64Array(rows * D);
  const dw = new Float64Array(D);
  const db = new Float64Array(D);
  let dwScale = 0;
  let dbScale = 0;
  let dxScale = 0;
  const absW = new Float64Array(D);
  const absB = new Float64Array(D);
  for (let r = 0; r < rows; r++) {
    let mg = 0;
    let mgx = 0;
    for (let j = 0; j < D; j++) {
      const xh = (x[r * D + j] - mu[r]) * rstd[r];
      const g = dy[r * D + j] * (w ? w[j] : 1);
      mg += g;
      mgx += g * xh;
      dw[j] += dy[r * D + j] * xh;
      db[j] += dy[r * D + j];
      absW[j] += Math.abs(dy[r * D + j] * xh);
      absB[j] += Math.abs(dy[r * D + j]);
    }
    mg /= D;
    mgx /= D;
    for (let j = 0; j < D; j++) {
      const xh = (x[r * D + j] - mu[r]) * rstd[r];
      const g = dy[r * D + j] * (w ? w[j] : 1);
      dx[r * D + j] = rstd[r] * (g - (rms ? 0 : mg) - xh * mgx);
      dxScale = Math.max(dxScale, rstd[r] * (Math.abs(g) + (rms ? 0 : Math.abs(mg)) + Math.abs(xh * mgx)));
    }
  }
  for (let j = 0; j < D; j++) {
    dwScale = Math.max(dwScale, absW[j]);
    dbScale = Math.max(dbScale, absB[j]);
  }
  return { dx, dw, db, dwScale, dbScale, dxScale };
}

useGpu();
afterAll(() => {
  setReductionMode('auto');
  setRowStrategy('auto');
});

const ROWS = [1, 7, 65];
const DS = [1, 7, 64, 257, 1000];
const cases = ROWS.flatMap((r) => DS.flatMap((d) => [true, false].map((affine) => [r, d, affine] as [number, number, boolean])));

// One workgroup per row under each reduction flavour, and one row per invocation (no reductions).
describe.each(['tree', 'subgroup', 'subgroup-fallback', 'row per thread'] as const)('norms (%s)', (mode) => {
  beforeAll(() => {
    setRowStrategy(mode === 'row per thread' ? 'thread' : 'workgroup');
    if (mode === 'row per thread') setReductionMode('auto');
    else if (mode === 'tree' || runtime().features.has('subgroups')) setReductionMode(mode);
  });

  it.for(cases)('layerNorm rows = %i, D = %i, affine = %s', async ([rows, D, affine], ctx) => {
    if (mode === 'subgroup' || mode === 'subgroup-fallback') requireFeature(ctx, 'subgroups');
    const eps = 1e-5;
    const xh = randn(rows * D, rows * 31 + D, 2, 0.5);
    const dyh = randn(rows * D, rows * 37 + D);
    const wh = randn(D, D + 1, 0.5, 1);
    const bh = randn(D, D + 2, 0.5);
    const x = tensor(xh, [rows, D]);
    const dy = tensor(dyh, [rows, D]);
    const w = affine ? tensor(wh, [D]) : undefined;
    const b = affine ? tensor(bh, [D]) : undefined;
    const y = empty([rows, D]);
    const mean = empty([rows]);
    const rstd = empty([rows]);
    layerNormInto(x, w, b, eps, y, mean, rstd);
    const dx = empty([rows, D]);
    const dw = affine ? empty([D]) : undefined;
    const db = affine ? empty([D]) : undefined;
    layerNormBackwardInto(x, w, mean, rstd, dy, dx, dw, db);

    const wantY = layerNorm(f64(xh, [rows, D]), [D], affine ? f64(wh, [D]) : undefined, affine ? f64(bh, [D]) : undefined, eps).data;
    const st = stats(xh, rows, D, eps, false);
    expectAllclose(await read(y), wantY, TOL.norm, { label: 'layerNorm y', shape: [rows, D] });
    expectAllclose(await read(mean), st.mu, derived({ atol: 1e-5 * maxAbs(xh), rtol: 1e-5 }), { label: 'layerNorm mean' });
    expectAllclose(await read(rstd), st.rstd, derived({ atol: 0, rtol: D === 1 ? 2e-5 : 1e-5 }), { label: 'layerNorm rstd' });
    const ref = grads(xh, affine ? wh : null, dyh, rows, D, eps, false);
    expectAllclose(await read(dx), ref.dx, derived({ atol: 2e-5 * ref.dxScale, rtol: 0 }), { label: 'layerNorm dx', shape: [rows, D] });
    if (dw && db) {
      expectAllclose(await read(dw), ref.dw, derived({ atol: 2e-5 * ref.dwScale, rtol: 0 }), { label: 'layerNorm dweight' });
      expectAllclose(await read(db), ref.db, derived({ atol: 2e-5 * ref.dbScale, rtol: 0 }), { label: 'layerNorm dbias' });
    }
    [x, dy, w, b].forEach((t) => t?.dispose());
  });

  // The one-row-per-invocation LayerNorm merges per-chunk statistics in one pass (Chan et al.);
  // an offset 30× the spread is where E[x²] − E[x]² would lose digits.
  it.for([
    [7, 1000],
    [65, 13],
  ])('layerNorm statistics with a mean far from zero, rows = %i, D = %i', async ([rows, D], ctx) => {
    if (mode === 'subgroup' || mode === 'subgroup-fallback') requireFeature(ctx, 'subgroups');
    const eps = 1e-5;
    const xh = randn(rows * D, rows + D, 1, 30);
    const x = tensor(xh, [rows, D]);
    const y = empty([rows, D]);
    const mean = empty([rows]);
    const rstd = empty([rows]);
    layerNormInto(x, undefined, undefined, eps, y, mean, rstd);
    const st = stats(xh, rows, D, eps, false);
    expectAllclose(await read(y), layerNorm(f64(xh, [rows, D]), [D], undefined, undefined, eps).data, TOL.norm, {
      label: 'y',
      shape: [rows, D],
    });
    expectAllclose(await read(mean), st.mu, derived({ atol: 1e-5 * maxAbs(xh), rtol: 1e-5 }), { label: 'mean' });
    expectAllclose(await read(rstd), st.rstd, derived({ atol: 0, rtol: 1e-5 }), { label: 'rstd' });
    x.dispose();
  });

  it.for(cases)('rmsNorm rows = %i, D = %i, weight = %s', async ([rows, D, affine], ctx) => {
    if (mode === 'subgroup' || mode === 'subgroup-fallback') requireFeature(ctx, 'subgroups');
    const eps = 1e-6;
    const xh = randn(rows * D, rows * 41 + D, 2, 0.5);
    const dyh = randn(rows * D, rows * 43 + D);
    const wh = randn(D, D + 3, 0.5, 1);
    const x = tensor(xh, [rows, D]);
    const dy = tensor(dyh, [rows, D]);
    const w = affine ? tensor(wh, [D]) : undefined;
    const y = empty([rows, D]);
    const rstd = empty([rows]);
    rmsNormInto(x, w, eps, y, rstd);
    const dx = empty([rows, D]);
    const dw = affine ? empty([D]) : undefined;
    rmsNormBackwardInto(x, w, rstd, dy, dx, dw);

    const wantY = rmsNorm(f64(xh, [rows, D]), [D], affine ? f64(wh, [D]) : undefined, eps).data;
    const st = stats(xh, rows, D, eps, true);
    expectAllclose(await read(y), wantY, TOL.norm, { label: 'rmsNorm y', shape: [rows, D] });
    expectAllclose(await read(rstd), st.rstd, derived({ atol: 0, rtol: 1e-5 }), { label: 'rmsNorm rstd' });
    const ref = grads(xh, affine ? wh : null, dyh, rows, D, eps, true);
    expectAllclose(await read(dx), ref.dx, derived({ atol: 2e-5 * ref.dxScale, rtol: 0 }), { label: 'rmsNorm dx', shape: [rows, D] });
    if (dw) expectAllclose(await read(dw), ref.dw, derived({ atol: 2e-5 * ref.dwScale, rtol: 0 }), { label: 'rmsNorm dweight' });
    [x, dy, w].forEach((t) => t?.dispose());
  });
});

describe('norm gradients and numerics', () => {
  it('the float64 analytic gradients match finite differences (tiny case), and the kernels match them', async () => {
    const rows = 3;
    const D = 5;
    const eps = 1e-5;
    const xh = randn(rows * D, 1, 1.5, 0.3);
    const dyh = randn(rows * D, 2);
    const wh = randn(D, 3, 0.5, 1);
    const bh = randn(D, 4, 0.5);
    const X = f64(xh, [rows, D]);
    const W = f64(wh, [D]);
    const B = f64(bh, [D]);
    const up = f64(dyh, [rows, D]);
    for (const rms of [false, true]) {
      const fx = (a: NDArray) => (rms ? rmsNorm(a, [D], W, eps) : layerNorm(a, [D], W, B, eps));
      const fw = (a: NDArray) => (rms ? rmsNorm(X, [D], a, eps) : layerNorm(X, [D], a, B, eps));
      const fb = (a: NDArray) => layerNorm(X, [D], W, a, eps);
      const ref = grads(xh, wh, dyh, rows, D, eps, rms);
      const name = rms ? 'rmsNorm' : 'layerNorm';
      expectAllclose(ref.dx, numericalVjp(fx, X, up).data, derived({ atol: 1e-6, rtol: 0 }), {
        label: `${name} analytic dx vs finite differences`,
      });
      expectAllclose(ref.dw, numericalVjp(fw, W, up).data, derived({ atol: 1e-6, rtol: 0 }), {
        label: `${name} analytic dweight vs finite differences`,
      });
      if (!rms)
        expectAllclose(ref.db, numericalVjp(fb, B, up).data, derived({ atol: 1e-6, rtol: 0 }), {
          label: `${name} analytic dbias vs finite differences`,
        });

      // The kernels against the finite differences directly.
      const x = tensor(xh, [rows, D]);
      const w = tensor(wh, [D]);
      const b = tensor(bh, [D]);
      const dy = tensor(dyh, [rows, D]);
      const y = empty([rows, D]);
      const mean = empty([rows]);
      const rstd = empty([rows]);
      const dx = empty([rows, D]);
      const dw = empty([D]);
      const db = empty([D]);
      if (rms) {
        rmsNormInto(x, w, eps, y, rstd);
        rmsNormBackwardInto(x, w, rstd, dy, dx, dw);
      } else {
        layerNormInto(x, w, b, eps, y, mean, rstd);
        layerNormBackwardInto(x, w, mean, rstd, dy, dx, dw, db);
      }
      expectAllclose(await read(dx), numericalVjp(fx, X, up).data, derived({ atol: 2e-5, rtol: 0 }), {
        label: `${name} kernel dx vs finite differences`,
      });
      expectAllclose(await read(dw), numericalVjp(fw, W, up).data, derived({ atol: 2e-5, rtol: 0 }), {
        label: `${name} kernel dweight vs finite differences`,
      });
      const dbGot = await read(db);
      if (!rms)
        expectAllclose(dbGot, numericalVjp(fb, B, up).data, derived({ atol: 2e-5, rtol: 0 }), {
          label: `${name} kernel dbias vs finite differences`,
        });
      [x, w, b, dy, y, mean, rstd].forEach((t) => t.dispose());
    }
  });

  it('layerNorm statistics are two-pass: a large mean does not destroy the variance', async () => {
    const rows = 7;
    const D = 1000;
    const xh = randn(rows * D, 5, 1, 1000); // mean 1000, std 1: E[x²] − E[x]² would lose ~all digits in f32
    const x = tensor(xh, [rows, D]);
    const y = empty([rows, D]);
    const mean = empty([rows]);
    const rstd = empty([rows]);
    layerNormInto(x, undefined, undefined, 1e-5, y, mean, rstd);
    const st = stats(xh, rows, D, 1e-5, false);
    // f32 rounding of the mean (~1000·2^-24 ≈ 6e-5 absolute) shifts every deviation alike: rstd to ~1e-4.
    expectAllclose(await read(rstd), st.rstd, derived({ atol: 0, rtol: 1e-4 }), { label: 'rstd at mean 1000' });
    const wantY = layerNorm(f64(xh, [rows, D]), [D], undefined, undefined, 1e-5).data;
    expectAllclose(await read(y), wantY, derived({ atol: 5e-4, rtol: 1e-4 }), { label: 'y at mean 1000' });
    [x, mean].forEach((t) => t.dispose());
  });

  it('f16 operands, offsets, chunked column sums and no leaks', async (ctx) => {
    requireFeature(ctx, 'shader-f16');
    const rows = 65;
    const D = 257;
    const x = tensor(randn(rows * D, 6, 1, 0.2), [rows, D], { dtype: 'f16' });
    const w = tensor(randn(D, 7, 0.3, 1), [D], { dtype: 'f16' });
    const xh = await toArray(x);
    const wh = await toArray(w);
    const dyh = randn(rows * D, 8);
    const dy = tensor(dyh, [rows, D]);
    const y = empty([rows, D]);
    const rstdBig = empty([rows + 5]);
    const rstd = { buffer: rstdBig.buffer, dtype: rstdBig.dtype, shape: [rows], strides: [1], offset: 5 };
    const dx = empty([rows, D]);
    const dw = empty([D], 'f16');
    await runtime().sync();
    const live = runtime().stats().liveBuffers;
    rmsNormInto(x, w, 1e-6, y, rstd);
    rmsNormBackwardInto(x, w, rstd, dy, dx, dw);
    await runtime().sync();
    // ≤: a finalizer may return a dropped tensor's buffer meanwhile; a leak would raise the count.
    expect(runtime().stats().liveBuffers, 'scratch partials returned').toBeLessThanOrEqual(live);
    const wantY = rmsNorm(f64(xh, [rows, D]), [D], f64(wh, [D]), 1e-6).data;
    expectAllclose(await read(y), wantY, TOL.norm, { label: 'rmsNorm f16 in' });
    const ref = grads(xh, wh, dyh, rows, D, 1e-6, true);
    expectAllclose(await read(dx), ref.dx, derived({ atol: 2e-5 * ref.dxScale, rtol: 0 }), { label: 'rmsNorm f16 dx' });
    expectAllclose(await read(dw), ref.dw, derived({ atol: 2e-5 * ref.dwScale, rtol: 1e-3 }), {
      label: 'rmsNorm f16 dweight (f16 output)',
    });
    [x, w, dy, rstdBig].forEach((t) => t.dispose());
  });

  // One row per invocation reads rows as vec4 when D and the row operands' offsets are multiples
  // of 4, and falls back to scalar loads otherwise: both must agree with the float64 reference.
  it.for([
    ['f32', 0],
    ['f32', 4],
    ['f32', 2],
    ['f16', 4],
    ['f16', 1],
  ] as const)('one row per invocation, %s operands at offset %i (vec4 or scalar loads)', async ([dtype, offset], ctx) => {
    if (dtype === 'f16') requireFeature(ctx, 'shader-f16');
    setRowStrategy('thread');
    try {
      const rows = 9;
      const D = 64;
      const eps = 1e-5;
      const padded = (data: Float32Array, shape: number[], dt: 'f32' | 'f16') => {
        const big = tensor(new Float32Array([...new Float32Array(offset).fill(7), ...data]), [offset + data.length], { dtype: dt });
        const strides = shape.length === 2 ? [shape[1], 1] : [1];
        return { t: big, v: { buffer: big.buffer, dtype: big.dtype, shape, strides, offset } };
      };
      const x = padded(randn(rows * D, 21, 2, 0.5), [rows, D], dtype);
      const w = padded(randn(D, 22, 0.5, 1), [D], dtype);
      const b = padded(randn(D, 23, 0.5), [D], dtype);
      const dy = padded(randn(rows * D, 24), [rows, D], 'f32');
      const xh = (await toArray(x.t)).slice(offset);
      const wh = (await toArray(w.t)).slice(offset);
      const bh = (await toArray(b.t)).slice(offset);
      const dyh = (await toArray(dy.t)).slice(offset);
      const y = empty([rows, D]);
      const mean = empty([rows]);
      const rstd = empty([rows]);
      const dx = empty([rows, D]);
      layerNormInto(x.v, w.v, b.v, eps, y, mean, rstd);
      layerNormBackwardInto(x.v, w.v, mean, rstd, dy.v, dx);
      const y2 = empty([rows, D]);
      const rstd2 = empty([rows]);
      const dx2 = empty([rows, D]);
      rmsNormInto(x.v, w.v, eps, y2, rstd2);
      rmsNormBackwardInto(x.v, w.v, rstd2, dy.v, dx2);
      const X = f64(xh, [rows, D]);
      expectAllclose(await read(y), layerNorm(X, [D], f64(wh, [D]), f64(bh, [D]), eps).data, TOL.norm, { label: 'layerNorm y' });
      expectAllclose(await read(y2), rmsNorm(X, [D], f64(wh, [D]), eps).data, TOL.norm, { label: 'rmsNorm y' });
      const gl = grads(xh, wh, dyh, rows, D, eps, false);
      const gr = grads(xh, wh, dyh, rows, D, eps, true);
      expectAllclose(await read(dx), gl.dx, derived({ atol: 2e-5 * gl.dxScale, rtol: 0 }), { label: 'layerNorm dx' });
      expectAllclose(await read(dx2), gr.dx, derived({ atol: 2e-5 * gr.dxScale, rtol: 0 }), { label: 'rmsNorm dx' });
      [x.t, w.t, b.t, dy.t].forEach((t) => t.dispose());
    } finally {
      setRowStrategy('auto');
    }
  });

  it('layerNorm with weight only and with bias only', async () => {
    const rows = 7;
    const D = 257;
    const eps = 1e-5;
    const xh = randn(rows * D, 11, 2, 0.5);
    const dyh = randn(rows * D, 12);
    const wh = randn(D, 13, 0.5, 1);
    const bh = randn(D, 14, 0.5);
    const x = tensor(xh, [rows, D]);
    const dy = tensor(dyh, [rows, D]);
    for (const [useW, useB] of [
      [true, false],
      [false, true],
    ]) {
      const w = useW ? tensor(wh, [D]) : undefined;
      const b = useB ? tensor(bh, [D]) : undefined;
      const y = empty([rows, D]);
      const mean = empty([rows]);
      const rstd = empty([rows]);
      const dx = empty([rows, D]);
      const dw = useW ? empty([D]) : undefined;
      const db = useB ? empty([D]) : undefined;
      layerNormInto(x, w, b, eps, y, mean, rstd);
      layerNormBackwardInto(x, w, mean, rstd, dy, dx, dw, db);
      const wantY = layerNorm(f64(xh, [rows, D]), [D], useW ? f64(wh, [D]) : undefined, useB ? f64(bh, [D]) : undefined, eps).data;
      const ref = grads(xh, useW ? wh : null, dyh, rows, D, eps, false);
      const label = useW ? 'weight only' : 'bias only';
      expectAllclose(await read(y), wantY, TOL.norm, { label: `layerNorm y, ${label}` });
      expectAllclose(await read(dx), ref.dx, derived({ atol: 2e-5 * ref.dxScale, rtol: 0 }), { label: `layerNorm dx, ${label}` });
      if (dw)
        expectAllclose(await read(dw), ref.dw, derived({ atol: 2e-5 * ref.dwScale, rtol: 0 }), { label: `layerNorm dweight, ${label}` });
      if (db)
        expectAllclose(await read(db), ref.db, derived({ atol: 2e-5 * ref.dbScale, rtol: 0 }), { label: `layerNorm dbias, ${label}` });
      [w, b, mean, rstd].forEach((t) => t?.dispose());
    }
    [x, dy].forEach((t) => t.dispose());
  });

  // On a fixed subgroup size (lavapipe: 8) the per-thread vec4 kernels drop their guards where the
  // launch has one invocation per row (rows a multiple of 64) and the row's vec4 count is a
  // multiple of the lanes (D a multiple of 32): every combination, forward and backward.
  it.for([
    [128, 384],
    [128, 40],
    [64, 1000],
    [129, 384],
  ])('row per thread, exact and inexact tilings: rows = %i, D = %i', async ([rows, D]) => {
    setRowStrategy('thread');
    try {
      const xh = randn(rows * D, rows + 5 * D, 2, 0.5);
      const dyh = randn(rows * D, rows + 7 * D);
      const wh = randn(D, D + 11, 0.5, 1);
      const bh = randn(D, D + 13, 0.5);
      const x = tensor(xh, [rows, D]);
      const dy = tensor(dyh, [rows, D]);
      const w = tensor(wh, [D]);
      const b = tensor(bh, [D]);
      for (const rms of [false, true]) {
        const eps = rms ? 1e-6 : 1e-5;
        const y = empty([rows, D]);
        const mean = empty([rows]);
        const rstd = empty([rows]);
        const dx = empty([rows, D]);
        if (rms) {
          rmsNormInto(x, w, eps, y, rstd);
          rmsNormBackwardInto(x, w, rstd, dy, dx);
        } else {
          layerNormInto(x, w, b, eps, y, mean, rstd);
          layerNormBackwardInto(x, w, mean, rstd, dy, dx);
        }
        const want = rms
          ? rmsNorm(f64(xh, [rows, D]), [D], f64(wh, [D]), eps)
          : layerNorm(f64(xh, [rows, D]), [D], f64(wh, [D]), f64(bh, [D]), eps);
        const label = rms ? 'rmsNorm' : 'layerNorm';
        expectAllclose(await read(y), want.data, TOL.norm, { label: `${label} y`, shape: [rows, D] });
        expectAllclose(await read(rstd), stats(xh, rows, D, eps, rms).rstd, derived({ atol: 0, rtol: 1e-5 }), { label: `${label} rstd` });
        const ref = grads(xh, wh, dyh, rows, D, eps, rms);
        expectAllclose(await read(dx), ref.dx, derived({ atol: 2e-5 * ref.dxScale, rtol: 0 }), { label: `${label} dx`, shape: [rows, D] });
        mean.dispose();
      }
      [x, dy, w, b].forEach((t) => t.dispose());
    } finally {
      setRowStrategy('auto');
    }
  });

  it('more rows than one grid dimension holds (2-D launch)', async () => {
    const rows = 70_000;
    const D = 3;
    const xh = randn(rows * D, 15, 2);
    const x = tensor(xh, [rows, D]);
    const y = empty([rows, D]);
    const rstd = empty([rows]);
    rmsNormInto(x, undefined, 1e-6, y, rstd);
    const want = rmsNorm(f64(xh, [rows, D]), [D], undefined, 1e-6).data;
    expectAllclose(await read(y), want, TOL.norm, { label: 'rmsNorm 70000 rows' });
    [x, rstd].forEach((t) => t.dispose());
  });

  it('rejects mismatched operands', () => {
    const x = empty([3, 4]);
    const y = empty([3, 4]);
    const m = empty([3]);
    const r = empty([2]);
    expect(() => layerNormInto(x, undefined, undefined, 1e-5, y, m, r)).toThrow(/rstd/);
    expect(() => rmsNormInto(x, empty([5]), 1e-6, y, m)).toThrow(/weight/);
    [x, y, m, r].forEach((t) => t.dispose());
  });
});
