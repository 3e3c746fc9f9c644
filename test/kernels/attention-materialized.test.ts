/**
 * The score-matrix path of attention (src/kernels/attention/materialized.ts) beyond what
 * attention.test.ts runs for both paths: slices processed in groups under a byte cap (whole
 * batch entries, or heads of one entry), strided q/k/v/o/lse views with Nq ≠ Nk and D not a
 * multiple of 4, the forward against the oracle of src/cpu, temporaries bounded by the cap and
 * released, refusal of a forced path that cannot fit, and the per-adapter default.
 *
 * Tolerances as in attention.test.ts (TOL.attention: |gpu − ref| ≤ 1e-5 + 1e-4·|ref| per element).
 */
import { describe, expect, it } from 'vitest';
import { nd } from '../../src/cpu/ndarray.js';
import { scaledDotProductAttention } from '../../src/cpu/attention.js';
import { runtime } from '../../src/gpu/runtime.js';
import { attentionBackward, attentionForward } from '../../src/kernels/attention.js';
import { tuningFor } from '../../src/kernels/tuning.js';
import { tensor, toArray } from '../../src/tensor/creation.js';
import { empty, type Tensor, viewOf } from '../../src/tensor/tensor.js';
import { expectAllclose, TOL } from '../helpers/compare.js';
import { randn } from '../helpers/random.js';
import { settleGarbage, useGpu } from '../helpers/setup.js';
import { fusedQKV, reference, unfuse } from './attention-reference.js';

useGpu();

const disposeAll = (...ts: Tensor[]) => {
  for (const t of ts) t.dispose();
};

describe('attention, score-matrix path', () => {
  // Per (batch, head) slice the backward needs 2·Nq·Nk·4 bytes: caps of 1, 2 and 5 slices give
  // groups of heads within one batch entry (H = 3), and groups of whole batch entries.
  it.each([
    ['one head per group', 1],
    ['two heads per group (the last group has one)', 2],
    ['one batch entry per group (caps of 5 slices, H = 3)', 5],
    ['everything in one group', 1000],
  ])('grouped (%s): strided q/k/v/o/lse, Nq ≠ Nk, D = 6 match float64', async (_, slices) => {
    const [b, h, nq, nk, d] = [2, 3, 19, 23, 6];
    const scale = 0.37;
    const cap = slices * 2 * nq * nk * 4;
    // q from one fused [B, Nq, 3, H, D] projection, k and v from another with Nk tokens.
    const qData = randn(b * nq * 3 * h * d, 201);
    const kvData = randn(b * nk * 3 * h * d, 202);
    const fq = fusedQKV(qData, b, nq, h, d);
    const fkv = fusedQKV(kvData, b, nk, h, d);
    const [q, k, v] = [fq.views[0], fkv.views[1], fkv.views[2]];
    const gd = randn(b * h * nq * d, 203);
    const g = tensor(gd, [b, h, nq, d]);
    // o in a [B, Nq, H, D] layout, lse in [B, Nq, H].
    const oBase = empty([b, nq, h, d]);
    const o = viewOf(oBase, [b, h, nq, d], [nq * h * d, d, h * d, 1], 0);
    const lseBase = empty([b, nq, h]);
    const lse = viewOf(lseBase, [b, h, nq], [nq * h, 1, h], 0);
    const dqkv = empty([b, nq, 3, h, d]);
    const dq = viewOf(dqkv, [b, h, nq, d], [nq * 3 * h * d, d, 3 * h * d, 1], 0);
    const dkv = empty([b, nk, 3, h, d]);
    const [dk, dv] = [1, 2].map((w) => viewOf(dkv, [b, h, nk, d], [nk * 3 * h * d, d, 3 * h * d, 1], w * h * d));
    const opts = { path: 'materialized' as const, materializeBytes: cap };
    attentionForward(q, k, v, o, lse, scale, opts);
    attentionBackward(q, k, v, o, lse, g, dq, dk, dv, scale, opts);
    const qr = unfuse(qData, b, nq, h, d, 0);
    const [kr, vr] = [1, 2].map((w) => unfuse(kvData, b, nk, h, d, w));
    const ref = reference(qr, kr, vr, b * h, nq, nk, d, scale, gd);
    expectAllclose(await toArray(o), ref.o, TOL.attention, { label: 'o' });
    expectAllclose(await toArray(lse), ref.lse, TOL.attention, { label: 'lse' });
    expectAllclose(await toArray(dq), ref.dq!, TOL.attention, { label: 'dq' });
    expectAllclose(await toArray(dk), ref.dk!, TOL.attention, { label: 'dk' });
    expectAllclose(await toArray(dv), ref.dv!, TOL.attention, { label: 'dv' });
    disposeAll(fq.qkv, ...fq.views, fkv.qkv, ...fkv.views, g, oBase, o, lseBase, lse, dqkv, dq, dkv, dk, dv);
  });

  it('forward matches the float64 oracle of src/cpu (softmax(q kᵀ·scale) v composed from matmul and softmax)', async () => {
    const [b, h, nq, nk, d] = [2, 2, 33, 17, 12];
    const scale = 0.3;
    const [qd, kd, vd] = [randn(b * h * nq * d, 211), randn(b * h * nk * d, 212), randn(b * h * nk * d, 213)];
    const [q, k, v] = [tensor(qd, [b, h, nq, d]), tensor(kd, [b, h, nk, d]), tensor(vd, [b, h, nk, d])];
    const o = empty([b, h, nq, d]);
    const lse = empty([b, h, nq]);
    attentionForward(q, k, v, o, lse, scale, { path: 'materialized' });
    const want = scaledDotProductAttention(nd(qd, [b, h, nq, d]), nd(kd, [b, h, nk, d]), nd(vd, [b, h, nk, d]), scale);
    expectAllclose(await toArray(o), want.data, TOL.attention, { label: 'o vs src/cpu' });
    disposeAll(q, k, v, o, lse);
  });

  it('keeps its temporaries under the cap, releases them, and refuses a forced path whose slice does not fit', async () => {
    const [b, h, n, d] = [2, 4, 64, 8];
    const scale = 0.35;
    const rt = runtime();
    const [qd, kd, vd, gd] = [221, 222, 223, 224].map((seed) => randn(b * h * n * d, seed));
    const [q, k, v, g] = [qd, kd, vd, gd].map((x) => tensor(x, [b, h, n, d]));
    const o = empty([b, h, n, d]);
    const lse = empty([b, h, n]);
    const grads = [empty([b, h, n, d]), empty([b, h, n, d]), empty([b, h, n, d])];
    const slice = 2 * n * n * 4;
    const cap = 3 * slice;
    await rt.sync();
    const sizes: number[] = [];
    const original = rt.allocate.bind(rt);
    rt.allocate = (bytes: number, label?: string) => {
      sizes.push(bytes);
      return original(bytes, label);
    };
    await settleGarbage();
    const before = rt.stats();
    try {
      const opts = { path: 'materialized' as const, materializeBytes: cap };
      attentionForward(q, k, v, o, lse, scale, opts);
      attentionBackward(q, k, v, o, lse, g, grads[0], grads[1], grads[2], scale, opts);
      await rt.sync();
    } finally {
      rt.allocate = original;
    }
    // Forward: one temporary of 3 slices' scores (3·n²·4 ≤ cap); backward: two of 3·n²·4 each.
    expect(sizes.length).toBe(3);
    expect(sizes.reduce((s, x) => s + x, 0) - sizes[0]).toBeLessThanOrEqual(cap);
    expect(sizes[0]).toBeLessThanOrEqual(cap);
    expect(rt.stats().liveBytes).toBe(before.liveBytes);
    const ref = reference(qd, kd, vd, b * h, n, n, d, scale, gd);
    const got = await Promise.all([o, ...grads].map((t) => toArray(t)));
    for (const [i, name] of ['o', 'dq', 'dk', 'dv'].entries())
      expectAllclose(got[i], [ref.o, ref.dq!, ref.dk!, ref.dv!][i], TOL.attention, { label: name });

    expect(() =>
      attentionBackward(q, k, v, o, lse, g, grads[0], grads[1], grads[2], scale, { path: 'materialized', materializeBytes: slice - 4 }),
    ).toThrow(/score-matrix path needs 32768 bytes per \(batch, head\)/);
    disposeAll(q, k, v, g, o, lse, ...grads);
  });

  it('is the default on CPU adapters only (tuning table)', () => {
    expect(tuningFor({ description: 'llvmpipe (LLVM 15.0.6, 256 bits)' }).attention.materializeBytes).toBeGreaterThan(0);
    expect(tuningFor({ vendor: 'nvidia' }).attention.materializeBytes).toBe(0);
    expect(tuningFor({}).attention.materializeBytes).toBe(0);
  });
});
