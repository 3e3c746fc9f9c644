/**
 * Attention (src/kernels/attention.ts), both paths (fused flash kernels and the score-matrix
 * path), against the float64 loops of attention-reference.ts: forward o and lse, the analytic
 * backward, finite differences of L = Σ O∘G, strided views, and (flash) memory that stays linear
 * in N. The score-matrix path's grouping and memory cap: attention-materialized.test.ts.
 *
 * Tolerance for f32: |gpu − ref| ≤ 1e-5 + 1e-4·|ref| per element (f32 accumulation over ≤ 1024
 * keys of O(1) terms); f16 inputs/outputs: 2e-3 + 1e-2·|ref| (f16 output rounding is 5e-4 rel).
 */
import { describe, expect, it } from 'vitest';
import { runtime } from '../../src/gpu/runtime.js';
import {
  attentionBackward,
  attentionForward,
  type AttentionConfig,
  type AttentionOptions,
  type AttentionPath,
} from '../../src/kernels/attention.js';
import { tensor, toArray } from '../../src/tensor/creation.js';
import { empty, type Tensor, viewOf } from '../../src/tensor/tensor.js';
import { expectAllclose, TOL } from '../helpers/compare.js';
import { fusedQKV, reference, unfuse } from './attention-reference.js';
import { randn } from '../helpers/random.js';
import { requireFeature, settleGarbage, useGpu } from '../helpers/setup.js';

useGpu();

function disposeAll(...ts: Tensor[]): void {
  for (const t of ts) t.dispose();
}

/** Both paths on every adapter (the default picks one per adapter: tuning.ts `materializeBytes`). */
const PATHS: AttentionPath[] = ['flash', 'materialized'];

describe.each(PATHS)('attentionForward (%s path)', (path) => {
  const cases: [number, number, number][] = [];
  for (const d of [8, 16, 72])
    for (const [nq, nk] of [
      [1, 1],
      [7, 7],
      [65, 65],
      [127, 127],
      [7, 65],
      [127, 33],
    ])
      cases.push([nq, nk, d]);
  cases.push([65, 127, 12], [33, 9, 6], [20, 70, 128]);

  it.each(cases)('B=2 H=3 Nq=%i Nk=%i D=%i matches float64 (f32: atol 1e-5, rtol 1e-4)', async (nq, nk, d) => {
    const [b, h] = [2, 3];
    const scale = 1 / Math.sqrt(d);
    const qd = randn(b * h * nq * d, 1 + nq + d);
    const kd = randn(b * h * nk * d, 2 + nk + d);
    const vd = randn(b * h * nk * d, 3 + nk + d);
    const [q, k, v] = [tensor(qd, [b, h, nq, d]), tensor(kd, [b, h, nk, d]), tensor(vd, [b, h, nk, d])];
    const o = empty([b, h, nq, d]);
    const lse = empty([b, h, nq]);
    attentionForward(q, k, v, o, lse, scale, { path });
    const ref = reference(qd, kd, vd, b * h, nq, nk, d, scale);
    expectAllclose(await toArray(o), ref.o, TOL.attention, { label: 'o', shape: [b, h, nq, d] });
    expectAllclose(await toArray(lse), ref.lse, TOL.attention, { label: 'lse', shape: [b, h, nq] });
    disposeAll(q, k, v, o, lse);
  });

  it('reads q/k/v as strided views of a fused [B,N,3,H,D] buffer and writes o into a [B,N,H,D] layout', async () => {
    const [b, n, h, d] = [2, 65, 3, 16];
    const data = randn(b * n * 3 * h * d, 42);
    const { qkv, views } = fusedQKV(data, b, n, h, d);
    const oBase = empty([b, n, h, d]);
    const o = viewOf(oBase, [b, h, n, d], [n * h * d, d, h * d, 1], 0);
    const lse = empty([b, h, n]);
    attentionForward(views[0], views[1], views[2], o, lse, 0.3, { path });
    const [q, k, v] = [0, 1, 2].map((w) => unfuse(data, b, n, h, d, w));
    const ref = reference(q, k, v, b * h, n, n, d, 0.3);
    expectAllclose(await toArray(o), ref.o, TOL.attention, { label: 'o (strided)', shape: [b, h, n, d] });
    expectAllclose(await toArray(lse), ref.lse, TOL.attention, { label: 'lse' });
    disposeAll(qkv, ...views, oBase, o, lse);
  });

  it('is stable for large scores (no overflow in the online softmax) and reuses its pipeline', async () => {
    const [b, h, n, d] = [1, 2, 40, 8];
    // Scores reach ~±200: exp() of them overflows f32 unless the running max is subtracted.
    const qd = randn(b * h * n * d, 5).map((x) => x * 5);
    const kd = randn(b * h * n * d, 6).map((x) => x * 5);
    const vd = randn(b * h * n * d, 7);
    const [q, k, v] = [tensor(qd, [b, h, n, d]), tensor(kd, [b, h, n, d]), tensor(vd, [b, h, n, d])];
    const o = empty([b, h, n, d]);
    const lse = empty([b, h, n]);
    attentionForward(q, k, v, o, lse, 1, { path });
    const pipelines = runtime().stats().pipelines;
    attentionForward(q, k, v, o, lse, 1, { path });
    expect(runtime().stats().pipelines).toBe(pipelines);
    const ref = reference(qd, kd, vd, b * h, n, n, d, 1);
    // f32 score errors grow with |s| (~1e-5 at 200) and enter p = exp(s − m) directly: atol 1e-4.
    expectAllclose(await toArray(o), ref.o, TOL.attentionLargeScores, { label: 'o' });
    expectAllclose(await toArray(lse), ref.lse, TOL.attentionLargeScores, { label: 'lse', tighten: { rtol: 1e-5 } });
    disposeAll(q, k, v, o, lse);
  });

  it('rejects mismatched shapes', () => {
    const q = empty([1, 1, 4, 8]);
    const k = empty([1, 1, 5, 8]);
    const bad = empty([1, 1, 5, 4]);
    const lse = empty([1, 1, 4]);
    expect(() => attentionForward(q, k, bad, q, lse, 1, { path })).toThrow(/v must have shape/);
    expect(() => attentionForward(q, k, k, q, empty([1, 1, 5]), 1, { path })).toThrow(/lse must have shape/);
    disposeAll(q, k, bad, lse);
  });
});

/** Runs forward + backward on the GPU; returns everything read back. */
async function gpuGrads(
  qd: Float32Array,
  kd: Float32Array,
  vd: Float32Array,
  gd: Float32Array,
  b: number,
  h: number,
  nq: number,
  nk: number,
  d: number,
  scale: number,
  opts: AttentionOptions = {},
) {
  const [q, k, v] = [tensor(qd, [b, h, nq, d]), tensor(kd, [b, h, nk, d]), tensor(vd, [b, h, nk, d])];
  const g = tensor(gd, [b, h, nq, d]);
  const o = empty([b, h, nq, d]);
  const lse = empty([b, h, nq]);
  const [dq, dk, dv] = [empty([b, h, nq, d]), empty([b, h, nk, d]), empty([b, h, nk, d])];
  attentionForward(q, k, v, o, lse, scale, opts);
  attentionBackward(q, k, v, o, lse, g, dq, dk, dv, scale, opts);
  const out = { o: await toArray(o), lse: await toArray(lse), dq: await toArray(dq), dk: await toArray(dk), dv: await toArray(dv) };
  disposeAll(q, k, v, g, o, lse, dq, dk, dv);
  return out;
}

/**
 * Every code shape: streamed or staged rows of the other operand, unrolled registers or loops
 * over D, several rows per thread and steps that do not divide the sizes. (The adapter's default
 * is covered by every other test.) Small D keeps the unrolled compiles short on lavapipe.
 */
const VARIANTS: [string, AttentionConfig][] = [
  ['stream, unrolled, 1 row × 1', { rows: 64, perThread: 1, unroll: 1, stage: 0, loops: false }],
  ['stream, unrolled, 2 rows × 3', { rows: 8, perThread: 2, unroll: 3, stage: 0, loops: false }],
  ['stage 8, unrolled, 1 row × 4', { rows: 32, perThread: 1, unroll: 4, stage: 8, loops: false }],
  ['stream, loops, 3 rows × 2', { rows: 16, perThread: 3, unroll: 2, stage: 0, loops: true }],
  ['stage 12, loops, 2 rows × 3', { rows: 16, perThread: 2, unroll: 3, stage: 12, loops: true }],
];

describe.each(VARIANTS)('attention variant: %s', (_, config) => {
  it.each([
    [7, 65, 8],
    [65, 30, 6],
    [33, 33, 12],
  ])('Nq=%i Nk=%i D=%i: forward and backward match float64 (f32: atol 1e-5, rtol 1e-4)', async (nq, nk, d) => {
    const [b, h] = [2, 3];
    const scale = 1 / Math.sqrt(d);
    const qd = randn(b * h * nq * d, 51 + nq);
    const kd = randn(b * h * nk * d, 52 + nk);
    const vd = randn(b * h * nk * d, 53 + d);
    const gd = randn(b * h * nq * d, 54);
    const got = await gpuGrads(qd, kd, vd, gd, b, h, nq, nk, d, scale, { config });
    const ref = reference(qd, kd, vd, b * h, nq, nk, d, scale, gd);
    expectAllclose(got.o, ref.o, TOL.attention, { label: 'o' });
    expectAllclose(got.lse, ref.lse, TOL.attention, { label: 'lse' });
    expectAllclose(got.dq, ref.dq!, TOL.attention, { label: 'dq' });
    expectAllclose(got.dk, ref.dk!, TOL.attention, { label: 'dk' });
    expectAllclose(got.dv, ref.dv!, TOL.attention, { label: 'dv' });
  });
});

describe.each(PATHS)('attentionBackward (%s path)', (path) => {
  const cases: [number, number, number][] = [];
  for (const d of [8, 16, 72])
    for (const [nq, nk] of [
      [1, 1],
      [7, 7],
      [65, 65],
      [127, 127],
      [7, 65],
      [127, 33],
    ])
      cases.push([nq, nk, d]);
  cases.push([65, 127, 12], [33, 9, 6]);

  it.each(cases)('B=2 H=3 Nq=%i Nk=%i D=%i matches the float64 analytic gradient (f32: atol 1e-5, rtol 1e-4)', async (nq, nk, d) => {
    const [b, h] = [2, 3];
    const scale = 1 / Math.sqrt(d);
    const qd = randn(b * h * nq * d, 11 + nq);
    const kd = randn(b * h * nk * d, 12 + nk);
    const vd = randn(b * h * nk * d, 13 + d);
    const gd = randn(b * h * nq * d, 14);
    const got = await gpuGrads(qd, kd, vd, gd, b, h, nq, nk, d, scale, { path });
    const ref = reference(qd, kd, vd, b * h, nq, nk, d, scale, gd);
    expectAllclose(got.dq, ref.dq!, TOL.attention, { label: 'dq', shape: [b, h, nq, d] });
    expectAllclose(got.dk, ref.dk!, TOL.attention, { label: 'dk', shape: [b, h, nk, d] });
    expectAllclose(got.dv, ref.dv!, TOL.attention, { label: 'dv', shape: [b, h, nk, d] });
  });

  it('agrees with central finite differences of L = Σ O∘G (float64) on sampled entries', async () => {
    const [b, h, nq, nk, d] = [1, 2, 9, 11, 8];
    const scale = 0.4;
    const qd = randn(b * h * nq * d, 21);
    const kd = randn(b * h * nk * d, 22);
    const vd = randn(b * h * nk * d, 23);
    const gd = randn(b * h * nq * d, 24);
    const got = await gpuGrads(qd, kd, vd, gd, b, h, nq, nk, d, scale, { path });
    const loss = (q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>) => {
      const { o } = reference(q, k, v, b * h, nq, nk, d, scale);
      let s = 0;
      for (let i = 0; i < o.length; i++) s += o[i] * gd[i];
      return s;
    };
    const eps = 1e-6;
    const inputs = [Float64Array.from(qd), Float64Array.from(kd), Float64Array.from(vd)];
    const grads = [got.dq, got.dk, got.dv];
    for (let w = 0; w < 3; w++) {
      const x = inputs[w];
      const numeric: number[] = [];
      const analytic: number[] = [];
      for (let t = 0; t < 12; t++) {
        const idx = (t * 37 + w * 11) % x.length;
        const orig = x[idx];
        x[idx] = orig + eps;
        const up = loss(inputs[0], inputs[1], inputs[2]);
        x[idx] = orig - eps;
        const down = loss(inputs[0], inputs[1], inputs[2]);
        x[idx] = orig;
        numeric.push((up - down) / (2 * eps));
        analytic.push(grads[w][idx]);
      }
      expectAllclose(analytic, numeric, TOL.attention, { label: `${['dq', 'dk', 'dv'][w]} vs finite differences` });
    }
  });

  it('takes strided q/k/v from a fused buffer, and is deterministic (bitwise) across runs', async () => {
    const [b, n, h, d] = [2, 33, 2, 16];
    const data = randn(b * n * 3 * h * d, 77);
    const gd = randn(b * h * n * d, 78);
    const { qkv, views } = fusedQKV(data, b, n, h, d);
    const [q, k, v] = views;
    const g = tensor(gd, [b, h, n, d]);
    const o = empty([b, h, n, d]);
    const lse = empty([b, h, n]);
    const grads = [empty([b, h, n, d]), empty([b, h, n, d]), empty([b, h, n, d])];
    attentionForward(q, k, v, o, lse, 0.25, { path });
    attentionBackward(q, k, v, o, lse, g, grads[0], grads[1], grads[2], 0.25, { path });
    const first = await Promise.all(grads.map((t) => toArray(t)));
    attentionBackward(q, k, v, o, lse, g, grads[0], grads[1], grads[2], 0.25, { path });
    const second = await Promise.all(grads.map((t) => toArray(t)));
    const [qr, kr, vr] = [0, 1, 2].map((w) => unfuse(data, b, n, h, d, w));
    const ref = reference(qr, kr, vr, b * h, n, n, d, 0.25, gd);
    expectAllclose(first[0], ref.dq!, TOL.attention, { label: 'dq' });
    expectAllclose(first[1], ref.dk!, TOL.attention, { label: 'dk' });
    expectAllclose(first[2], ref.dv!, TOL.attention, { label: 'dv' });
    for (let w = 0; w < 3; w++) expect(Array.from(second[w])).toEqual(Array.from(first[w]));
    disposeAll(qkv, ...views, g, o, lse, ...grads);
  });

  it('writes dq, dk, dv into one fused [B,N,3,H,D] gradient buffer (shared bindings) and rejects read/write aliasing', async () => {
    const [b, n, h, d] = [2, 17, 2, 8];
    const data = randn(b * n * 3 * h * d, 61);
    const gd = randn(b * h * n * d, 62);
    const { qkv, views } = fusedQKV(data, b, n, h, d);
    const [q, k, v] = views;
    const g = tensor(gd, [b, h, n, d]);
    const o = empty([b, h, n, d]);
    const lse = empty([b, h, n]);
    const dqkv = empty([b, n, 3, h, d]);
    const grads = [0, 1, 2].map((w) => viewOf(dqkv, [b, h, n, d], [n * 3 * h * d, d, 3 * h * d, 1], w * h * d));
    attentionForward(q, k, v, o, lse, 0.5, { path });
    attentionBackward(q, k, v, o, lse, g, grads[0], grads[1], grads[2], 0.5, { path });
    const [qr, kr, vr] = [0, 1, 2].map((w) => unfuse(data, b, n, h, d, w));
    const ref = reference(qr, kr, vr, b * h, n, n, d, 0.5, gd);
    expectAllclose(await toArray(grads[0]), ref.dq!, TOL.attention, { label: 'dq' });
    expectAllclose(await toArray(grads[1]), ref.dk!, TOL.attention, { label: 'dk' });
    expectAllclose(await toArray(grads[2]), ref.dv!, TOL.attention, { label: 'dv' });
    expect(() => attentionForward(q, k, v, q, lse, 0.5, { path })).toThrow(/o shares its buffer with q/);
    expect(() => attentionBackward(q, k, v, o, lse, g, grads[0], views[1], grads[2], 0.5, { path })).toThrow(/dk shares its buffer/);
    disposeAll(qkv, ...views, g, o, lse, dqkv, ...grads);
  });

  it('f16 inputs and outputs (f32 accumulation) match float64 within atol 2e-3, rtol 1e-2', async ({ skip }) => {
    requireFeature({ skip }, 'shader-f16');
    const [b, h, nq, nk, d] = [1, 2, 37, 29, 16];
    const scale = 0.25;
    const half = { dtype: 'f16' as const };
    const q = tensor(randn(b * h * nq * d, 31), [b, h, nq, d], half);
    const k = tensor(randn(b * h * nk * d, 32), [b, h, nk, d], half);
    const v = tensor(randn(b * h * nk * d, 33), [b, h, nk, d], half);
    const g = tensor(randn(b * h * nq * d, 34), [b, h, nq, d], half);
    const o = empty([b, h, nq, d], 'f16');
    const lse = empty([b, h, nq]);
    const grads = [empty([b, h, nq, d], 'f16'), empty([b, h, nk, d], 'f16'), empty([b, h, nk, d], 'f16')];
    attentionForward(q, k, v, o, lse, scale, { path });
    attentionBackward(q, k, v, o, lse, g, grads[0], grads[1], grads[2], scale, { path });
    // The reference sees the f16-rounded inputs.
    const [qd, kd, vd, gd] = await Promise.all([q, k, v, g].map((t) => toArray(t)));
    const ref = reference(qd, kd, vd, b * h, nq, nk, d, scale, gd);
    expectAllclose(await toArray(o), ref.o, TOL.f16, { label: 'o' });
    expectAllclose(await toArray(grads[0]), ref.dq!, TOL.f16, { label: 'dq' });
    expectAllclose(await toArray(grads[1]), ref.dk!, TOL.f16, { label: 'dk' });
    expectAllclose(await toArray(grads[2]), ref.dv!, TOL.f16, { label: 'dv' });
    disposeAll(q, k, v, g, o, lse, ...grads);
  });
});

describe('attention memory', () => {
  it('flash path, N = 1024, D = 16: no allocation reaches N² floats; live memory returns to baseline; correct on sampled rows', async () => {
    const [b, h, n, d] = [1, 1, 1024, 16];
    const scale = 1 / Math.sqrt(d);
    const rt = runtime();
    const qd = randn(n * d, 91);
    const kd = randn(n * d, 92);
    const vd = randn(n * d, 93);
    const gd = randn(n * d, 94);
    const [q, k, v, g] = [qd, kd, vd, gd].map((x) => tensor(x, [b, h, n, d]));
    const o = empty([b, h, n, d]);
    const lse = empty([b, h, n]);
    const grads = [empty([b, h, n, d]), empty([b, h, n, d]), empty([b, h, n, d])];
    await rt.sync();

    // Record every allocation the kernels make (the pool's only entry point is Runtime.allocate).
    const sizes: number[] = [];
    const original = rt.allocate.bind(rt);
    rt.allocate = (bytes: number, label?: string) => {
      sizes.push(bytes);
      return original(bytes, label);
    };
    await settleGarbage();
    const before = rt.stats();
    let peakLive = before.liveBytes;
    try {
      attentionForward(q, k, v, o, lse, scale, { path: 'flash' });
      peakLive = Math.max(peakLive, rt.stats().liveBytes);
      attentionBackward(q, k, v, o, lse, g, grads[0], grads[1], grads[2], scale, { path: 'flash' });
      peakLive = Math.max(peakLive, rt.stats().liveBytes);
      await rt.sync();
    } finally {
      rt.allocate = original;
    }
    const after = rt.stats();
    const n2Bytes = n * n * 4;
    expect(Math.max(0, ...sizes)).toBeLessThan(n2Bytes);
    expect(sizes.reduce((s, x) => s + x, 0)).toBeLessThan(n2Bytes / 64); // only the [B,H,N] delta
    expect(after.liveBytes).toBe(before.liveBytes);
    expect(peakLive - before.liveBytes).toBeLessThan(n2Bytes / 64);
    expect(after.created - before.created).toBeLessThanOrEqual(1);

    const ref = reference(qd, kd, vd, b * h, n, n, d, scale, gd);
    const rows = [0, 1, 255, 511, 777, 1000, 1023];
    const pick = (a: ArrayLike<number>) => rows.flatMap((r) => Array.from({ length: d }, (_, c) => a[r * d + c]));
    const got = await Promise.all([o, ...grads].map((t) => toArray(t)));
    const lseGot = await toArray(lse);
    expectAllclose(pick(got[0]), pick(ref.o), TOL.attention, { label: 'o rows' });
    expectAllclose(
      rows.map((r) => lseGot[r]),
      rows.map((r) => ref.lse[r]),
      TOL.attention,
      { label: 'lse rows' },
    );
    expectAllclose(pick(got[1]), pick(ref.dq!), TOL.attention, { label: 'dq rows' });
    expectAllclose(pick(got[2]), pick(ref.dk!), TOL.attention, { label: 'dk rows' });
    expectAllclose(pick(got[3]), pick(ref.dv!), TOL.attention, { label: 'dv rows' });
    disposeAll(q, k, v, g, o, lse, ...grads);
  });
});
