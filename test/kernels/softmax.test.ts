/**
 * Softmax family and fused cross entropy against float64 (src/cpu softmax / logSoftmax and
 * analytic gradients derived here), plus finite-difference checks on tiny cases, over rows ∈
 * {1, 7, 65} × C ∈ {1, 7, 64, 257, 1000} and every workgroup-reduction flavour.
 *
 * Tolerances (f32 compute): probabilities atol 1e-7, rtol 2e-5 (exp is a few ulp, the row sum
 * ≤ C·ε); log-probabilities atol 2e-6·(1 + |logsumexp|); gradients atol 1e-6 · max|reference|
 * + rtol 1e-4; finite differences (float64 central differences of the float64 oracle vs the
 * f32 kernel) atol 2e-5.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crossEntropy, logSoftmax, nd, numericalGradient, numericalVjp, softmax, type NDArray } from '../../src/cpu/index.js';
import { runtime } from '../../src/gpu/runtime.js';
import { setReductionMode } from '../../src/kernels/reduce.js';
import { setRowStrategy } from '../../src/kernels/row-reduce.js';
import {
  crossEntropyBackwardInto,
  crossEntropyInto,
  logSoftmaxBackwardInto,
  logSoftmaxInto,
  softmaxBackwardInto,
  softmaxInto,
} from '../../src/kernels/softmax.js';
import { tensor, toArray } from '../../src/tensor/creation.js';
import { empty, type Tensor } from '../../src/tensor/tensor.js';
import { derived, expectAllclose, TOL } from '../helpers/compare.js';
import { randn, randomInts } from '../helpers/random.js';
import { requireFeature, useGpu } from '../helpers/setup.js';

const f64 = (a: ArrayLike<number>, shape: number[]): NDArray => nd(Float64Array.from(a), shape);

const maxAbs = (a: ArrayLike<number>) => Array.from(a).reduce((m, v) => (Number.isFinite(v) ? Math.max(m, Math.abs(v)) : m), 0);

async function read(t: Tensor): Promise<Float32Array> {
  const a = (await toArray(t)) as Float32Array;
  t.dispose();
  return a;
}

/** softmax and logSoftmax of the host rows `xh` ([rows, C]) on the GPU, read back. */
async function softmaxAndLog(xh: Float32Array, rows: number, C: number): Promise<{ p: Float32Array; lp: Float32Array }> {
  const x = tensor(xh, [rows, C]);
  const p = empty([rows, C]);
  const lp = empty([rows, C]);
  softmaxInto(x, p);
  logSoftmaxInto(x, lp);
  const out = { p: await read(p), lp: await read(lp) };
  [x, p, lp].forEach((t) => t.dispose());
  return out;
}

/** Float64 softmax backward: dx = y ∘ (dy − Σ dy∘y). */
function softmaxGrad(y: ArrayLike<number>, dy: ArrayLike<number>, rows: number, C: number): Float64Array {
  const dx = new Float64Array(rows * C);
  for (let r = 0; r < rows; r++) {
    let dot = 0;
    for (let j = 0; j < C; j++) dot += dy[r * C + j] * y[r * C + j];
    for (let j = 0; j < C; j++) dx[r * C + j] = y[r * C + j] * (dy[r * C + j] - dot);
  }
  return dx;
}
/** Float64 log-softmax backward: dx = dy − exp(y) Σ dy. */
function logSoftmaxGrad(y: ArrayLike<number>, dy: ArrayLike<number>, rows: number, C: number): Float64Array {
  const dx = new Float64Array(rows * C);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let j = 0; j < C; j++) s += dy[r * C + j];
    for (let j = 0; j < C; j++) dx[r * C + j] = dy[r * C + j] - Math.exp(y[r * C + j]) * s;
  }
  return dx;
}
/** Float64 per-row cross entropy and its gradient (softmax − onehot)·scale. */
function crossEntropyRef(x: ArrayLike<number>, labels: ArrayLike<number>, rows: number, C: number, scale: number) {
  const lp = logSoftmax(f64(x, [rows, C]), 1).data;
  const loss = new Float64Array(rows);
  const grad = new Float64Array(rows * C);
  for (let r = 0; r < rows; r++) {
    const y = labels[r];
    const ok = y >= 0 && y < C;
    loss[r] = ok ? -lp[r * C + y] : NaN;
    for (let j = 0; j < C; j++) grad[r * C + j] = ok ? (Math.exp(lp[r * C + j]) - (j === y ? 1 : 0)) * scale : NaN;
  }
  return { loss, grad, lp };
}

useGpu();
afterAll(() => {
  setReductionMode('auto');
  setRowStrategy('auto');
});

const ROWS = [1, 7, 65];
const COLS = [1, 7, 64, 257, 1000];
const cases = ROWS.flatMap((r) => COLS.map((c) => [r, c] as [number, number]));

// One workgroup per row under each reduction flavour, and one row per invocation (no reductions).
describe.each(['tree', 'subgroup', 'subgroup-fallback', 'row per thread'] as const)('softmax family (%s)', (mode) => {
  beforeAll(() => {
    setRowStrategy(mode === 'row per thread' ? 'thread' : 'workgroup');
    if (mode === 'row per thread') setReductionMode('auto');
    else if (mode === 'tree' || runtime().features.has('subgroups')) setReductionMode(mode);
  });

  it.for(cases)('forward and backward, rows = %i, C = %i', async ([rows, C], ctx) => {
    if (mode === 'subgroup' || mode === 'subgroup-fallback') requireFeature(ctx, 'subgroups');
    const n = rows * C;
    const xh = randn(n, rows * 7 + C, 3);
    const dyh = randn(n, rows * 11 + C + 1);
    const x = tensor(xh, [rows, C]);
    const dy = tensor(dyh, [rows, C]);
    const p = empty([rows, C]);
    const lp = empty([rows, C]);
    softmaxInto(x, p);
    logSoftmaxInto(x, lp);
    const dxs = empty([rows, C]);
    const dxl = empty([rows, C]);
    softmaxBackwardInto(p, dy, dxs);
    logSoftmaxBackwardInto(lp, dy, dxl);
    const pGot = await read(p);
    const lpGot = await read(lp);
    const wantP = softmax(f64(xh, [rows, C]), 1).data;
    const wantLp = logSoftmax(f64(xh, [rows, C]), 1).data;
    expectAllclose(pGot, wantP, TOL.softmax, { label: 'softmax', shape: [rows, C] });
    expectAllclose(lpGot, wantLp, derived({ atol: 2e-6 * (1 + maxAbs(wantLp)), rtol: 0 }), { label: 'logSoftmax', shape: [rows, C] });
    // Backward from the kernel's own (f32) y, against the float64 formula on the same y.
    const ws = softmaxGrad(pGot, dyh, rows, C);
    const wl = logSoftmaxGrad(lpGot, dyh, rows, C);
    const gotS = await read(dxs);
    const gotL = await read(dxl);
    expectAllclose(gotS, ws, derived({ atol: 1e-6 * maxAbs(ws) + 1e-7, rtol: 1e-4 }), { label: 'softmaxBackward', shape: [rows, C] });
    expectAllclose(gotL, wl, derived({ atol: 1e-6 * maxAbs(wl) + 1e-7, rtol: 1e-4 }), { label: 'logSoftmaxBackward', shape: [rows, C] });
    // And against the exact float64 gradient at x (the kernel's y carries f32 rounding).
    const es = softmaxGrad(wantP, dyh, rows, C);
    const el = logSoftmaxGrad(wantLp, dyh, rows, C);
    expectAllclose(gotS, es, derived({ atol: 2e-6 * maxAbs(es) + 1e-7, rtol: 1e-4 }), {
      label: 'softmaxBackward vs exact',
      shape: [rows, C],
    });
    expectAllclose(gotL, el, derived({ atol: 2e-6 * maxAbs(el) + 1e-7, rtol: 1e-4 }), {
      label: 'logSoftmaxBackward vs exact',
      shape: [rows, C],
    });
    x.dispose();
    dy.dispose();
  });

  it.for(cases)('cross entropy forward and backward, rows = %i, C = %i', async ([rows, C], ctx) => {
    if (mode === 'subgroup' || mode === 'subgroup-fallback') requireFeature(ctx, 'subgroups');
    const xh = randn(rows * C, rows * 13 + C, 4);
    const lab = randomInts(rows, rows + C, C);
    const x = tensor(xh, [rows, C]);
    const labels = tensor(lab, [rows]);
    const loss = empty([rows]);
    const logp = empty([rows, C]);
    const loss2 = empty([rows]);
    const grad = empty([rows, C]);
    crossEntropyInto(x, labels, loss, logp);
    crossEntropyInto(x, labels, loss2);
    crossEntropyBackwardInto(x, labels, 1 / rows, grad);
    const ref = crossEntropyRef(xh, lab, rows, C, 1 / rows);
    const lossTol = 2e-6 * (1 + maxAbs(ref.lp));
    expectAllclose(await read(loss), ref.loss, derived({ atol: lossTol, rtol: 0 }), { label: 'crossEntropy loss' });
    expectAllclose(await read(loss2), ref.loss, derived({ atol: lossTol, rtol: 0 }), { label: 'crossEntropy loss (no logProbs)' });
    expectAllclose(await read(logp), ref.lp, derived({ atol: lossTol, rtol: 0 }), { label: 'crossEntropy logProbs', shape: [rows, C] });
    expectAllclose(await read(grad), ref.grad, derived({ atol: 1e-7 / rows, rtol: 2e-5 }), {
      label: 'crossEntropyBackward',
      shape: [rows, C],
    });
    x.dispose();
    labels.dispose();
  });
});

describe('softmax numerics and gradients', () => {
  it('finite differences agree with the backward kernels on a tiny case', async () => {
    const rows = 2;
    const C = 5;
    const xh = randn(rows * C, 5, 2);
    const dyh = randn(rows * C, 6);
    const x = tensor(xh, [rows, C]);
    const dy = tensor(dyh, [rows, C]);
    const xs = f64(xh, [rows, C]);
    const up = f64(dyh, [rows, C]);
    for (const [kind, fwd, bwd, oracle] of [
      ['softmax', softmaxInto, softmaxBackwardInto, (a: NDArray) => softmax(a, 1)],
      ['logSoftmax', logSoftmaxInto, logSoftmaxBackwardInto, (a: NDArray) => logSoftmax(a, 1)],
    ] as const) {
      const y = empty([rows, C]);
      const dx = empty([rows, C]);
      fwd(x, y);
      bwd(y, dy, dx);
      y.dispose();
      expectAllclose(await read(dx), numericalVjp(oracle, xs, up).data, derived({ atol: 2e-5, rtol: 0 }), {
        label: `${kind} vs finite differences`,
      });
    }
    // Cross entropy: d(mean loss)/dlogits.
    const lab = Int32Array.of(3, 0);
    const labels = tensor(lab, [rows]);
    const grad = empty([rows, C]);
    crossEntropyBackwardInto(x, labels, 1 / rows, grad);
    const fd = numericalGradient((a) => crossEntropy(a, lab).data[0], xs);
    expectAllclose(await read(grad), fd.data, derived({ atol: 2e-5, rtol: 0 }), { label: 'crossEntropy vs finite differences' });
    [x, dy, labels].forEach((t) => t.dispose());
  });

  it('is stable for huge logits and exact zeros for -inf (masked) entries', async () => {
    const rows = 3;
    const C = 300;
    const xh = randn(rows * C, 42, 1000); // |x| up to ~4000: exp would overflow without the max shift
    for (let j = 0; j < C; j += 3) xh[C + j] = -Infinity; // row 1: every third entry masked
    const { p: got, lp: gotLp } = await softmaxAndLog(xh, rows, C);
    const want = softmax(f64(xh, [rows, C]), 1).data;
    expectAllclose(got, want, TOL.softmax, { label: 'softmax huge' });
    for (let j = 0; j < C; j += 3) expect(got[C + j]).toBe(0);
    const wantLp = logSoftmax(f64(xh, [rows, C]), 1).data;
    expectAllclose(gotLp, wantLp, derived({ atol: 2e-6 * maxAbs(wantLp), rtol: 0 }), { label: 'logSoftmax huge' });
  });

  it('labels outside [0, C) give NaN loss and NaN gradient rows, other rows unaffected', async () => {
    const rows = 4;
    const C = 7;
    const xh = randn(rows * C, 9);
    const lab = Int32Array.of(2, -1, 7, 6);
    const x = tensor(xh, [rows, C]);
    const labels = tensor(lab, [rows]);
    const loss = empty([rows]);
    const grad = empty([rows, C]);
    crossEntropyInto(x, labels, loss);
    crossEntropyBackwardInto(x, labels, 0.5, grad);
    const ref = crossEntropyRef(xh, lab, rows, C, 0.5);
    const l = await read(loss);
    expect(Number.isNaN(l[1]) && Number.isNaN(l[2])).toBe(true);
    expectAllclose(l, ref.loss, derived({ atol: 1e-5, rtol: 0 }), { label: 'loss with bad labels' });
    expectAllclose(await read(grad), ref.grad, TOL.softmax, { label: 'grad with bad labels' });
    [x, labels].forEach((t) => t.dispose());
  });

  it('f16 inputs are read as f32; f16 outputs round once', async (ctx) => {
    requireFeature(ctx, 'shader-f16');
    const rows = 7;
    const C = 257;
    const x = tensor(randn(rows * C, 3, 3), [rows, C], { dtype: 'f16' });
    const xh = await toArray(x);
    const p = empty([rows, C]);
    const p16 = empty([rows, C], 'f16');
    softmaxInto(x, p);
    softmaxInto(x, p16);
    const want = softmax(f64(xh, [rows, C]), 1).data;
    expectAllclose(await read(p), want, TOL.softmax, { label: 'softmax f16 in' });
    expectAllclose(await read(p16), want, TOL.f16, { label: 'softmax f16 out', tighten: { atol: 1e-7, rtol: 1e-3 } }); // f16: 2^-11 relative
    x.dispose();
  });

  it('more rows than one grid dimension holds (2-D launch)', async () => {
    const rows = 70_000;
    const C = 3;
    const xh = randn(rows * C, 21, 2);
    const lab = randomInts(rows, 22, C);
    const x = tensor(xh, [rows, C]);
    const labels = tensor(lab, [rows]);
    const p = empty([rows, C]);
    const loss = empty([rows]);
    softmaxInto(x, p);
    crossEntropyInto(x, labels, loss);
    expectAllclose(await read(p), softmax(f64(xh, [rows, C]), 1).data, TOL.softmax, { label: 'softmax 70000 rows' });
    const ref = crossEntropyRef(xh, lab, rows, C, 1);
    expectAllclose(await read(loss), ref.loss, derived({ atol: 2e-6 * (1 + maxAbs(ref.lp)), rtol: 0 }), {
      label: 'crossEntropy 70000 rows',
    });
    [x, labels].forEach((t) => t.dispose());
  });

  // One row per invocation reads vec4 when C and every offset are multiples of 4 (x at 8, out at 4),
  // scalars otherwise (x at 6): both against the float64 reference, forward and backward.
  it.for([
    [8, 4],
    [6, 4],
  ])('one row per invocation with x at offset %i, outputs at offset %i (vec4 or scalar loads)', async ([xo, oo]) => {
    setRowStrategy('thread');
    try {
      const rows = 9;
      const C = 64;
      const big = tensor(randn(rows * C + xo, 31, 3), [rows * C + xo]);
      const xh = (await toArray(big)).subarray(xo);
      const view = (t: Tensor, offset: number) => ({ buffer: t.buffer, dtype: t.dtype, shape: [rows, C], strides: [C, 1], offset });
      const pBig = empty([rows * C + oo]);
      const dxBig = empty([rows * C + oo]);
      const dyh = randn(rows * C, 32);
      const dy = tensor(dyh, [rows, C]);
      softmaxInto(view(big, xo), view(pBig, oo));
      softmaxBackwardInto(view(pBig, oo), dy, view(dxBig, oo));
      const want = softmax(f64(xh, [rows, C]), 1).data;
      expectAllclose((await toArray(pBig)).subarray(oo), want, TOL.softmax, { label: 'softmax' });
      const ws = softmaxGrad(want, dyh, rows, C);
      expectAllclose((await toArray(dxBig)).subarray(oo), ws, derived({ atol: 2e-6 * maxAbs(ws) + 1e-7, rtol: 1e-4 }), {
        label: 'softmaxBackward',
      });
      [big, pBig, dxBig, dy].forEach((t) => t.dispose());
    } finally {
      setRowStrategy('auto');
    }
  });

  // The vec4 kernel updates its running max and sum four values at a time, skipping a vec4 while the
  // max is still -inf: a leading masked vec4, a fully masked row, a NaN inside a masked vec4, a NaN
  // later, a +inf and a huge-magnitude row must each give what float64 exp(x − max) / Σ gives; so
  // must the one-value update of the scalar (C = 15) and the workgroup kernels.
  it.for([
    ['thread', 16],
    ['thread', 15],
    ['workgroup', 16],
  ] as const)('%s rows of %i: masked, all -inf, NaN and +inf rows as float64', async ([strategy, C]) => {
    setRowStrategy(strategy);
    try {
      const rows = 7;
      const xh = randn(rows * C, 77, 3);
      const row = (r: number) => xh.subarray(r * C, (r + 1) * C);
      row(0).fill(-Infinity, 0, 5); // the first vec4 and one more masked
      row(1).fill(-Infinity); // every entry masked: NaN, as 0/0
      row(2).fill(-Infinity, 0, 4);
      row(2)[2] = Number.NaN; // a NaN in a vec4 where the max is still -inf
      row(3)[9] = Number.NaN;
      row(4)[6] = Number.POSITIVE_INFINITY;
      for (let j = 0; j < C; j++) row(5)[j] *= 1000; // exp would overflow without the shift
      const { p: got, lp: gotLp } = await softmaxAndLog(xh, rows, C);
      expectAllclose(got, softmax(f64(xh, [rows, C]), 1).data, TOL.softmax, { label: 'softmax special rows', shape: [rows, C] });
      for (let j = 0; j < 5; j++) expect(got[j]).toBe(0);
      const wantLp = logSoftmax(f64(xh, [rows, C]), 1).data;
      // log-probabilities scale with the logits (row 5 reaches ~10⁴): f32 rounding of that size
      const lpScale = Math.max(...Array.from(wantLp).filter(Number.isFinite).map(Math.abs));
      expectAllclose(gotLp, wantLp, derived({ atol: 2e-6 * lpScale, rtol: 0 }), {
        label: 'logSoftmax special rows',
        shape: [rows, C],
      });
    } finally {
      setRowStrategy('auto');
    }
  });

  it('offsets are honoured and nothing leaks', async () => {
    const rows = 5;
    const C = 65;
    const big = tensor(randn(rows * C + 13, 8), [rows * C + 13]);
    const xh = (await toArray(big)).subarray(13);
    const xv = { buffer: big.buffer, dtype: big.dtype, shape: [rows, C], strides: [C, 1], offset: 13 };
    const outBig = empty([rows * C + 3]);
    const ov = { buffer: outBig.buffer, dtype: outBig.dtype, shape: [rows, C], strides: [C, 1], offset: 3 };
    await runtime().sync();
    const live = runtime().stats().liveBuffers;
    softmaxInto(xv, ov);
    const got = (await toArray(outBig)).subarray(3);
    expect(runtime().stats().liveBuffers).toBeLessThanOrEqual(live); // ≤: finalizers may free dropped tensors meanwhile
    expectAllclose(got, softmax(f64(xh, [rows, C]), 1).data, TOL.softmax, { label: 'softmax with offsets' });
    expect(() => softmaxInto(xv, { ...ov, shape: [rows + 1, C] })).toThrow(/match/);
    [big, outBig].forEach((t) => t.dispose());
  });
});
