/**
 * Fused multi-tensor optimizer kernels against float64 loops written out here.
 * Tolerances (TOL.optimizer, test/helpers/compare.ts): f32 state vs float64 reference,
 * |gpu − ref| ≤ atol + rtol·|ref| with rtol 1e-5
 * (atol 1e-7 absorbs elements that pass near zero).
 */
import { describe, expect, it } from 'vitest';
import { runtime } from '../../src/gpu/runtime.js';
import { adamwStep, clipScale, emaUpdate, groupsPerDispatch, sgdStep, sumOfSquares, type AdamWHyper } from '../../src/kernels/optim.js';
import { tensor, toArray, zeros } from '../../src/tensor/creation.js';
import { viewOf } from '../../src/tensor/tensor.js';
import { expectTensorAllclose, TOL } from '../helpers/compare.js';
import { uniformF32 } from '../helpers/random.js';
import { settleGarbage, useGpu } from '../helpers/setup.js';

useGpu();

const SIZES = [1, 7, 1000];

interface AdamState {
  p: Float64Array;
  m: Float64Array;
  v: Float64Array;
}

/** One PyTorch AdamW step in float64, in place. */
function adamwRef(s: AdamState, g32: Float32Array, h: AdamWHyper): void {
  const bc1 = 1 - h.beta1 ** h.step;
  const bc2 = 1 - h.beta2 ** h.step;
  for (let i = 0; i < s.p.length; i++) {
    const g = g32[i] * (h.gradScale ?? 1);
    s.p[i] *= 1 - h.lr * h.weightDecay;
    s.m[i] = h.beta1 * s.m[i] + (1 - h.beta1) * g;
    s.v[i] = h.beta2 * s.v[i] + (1 - h.beta2) * g * g;
    s.p[i] -= (h.lr * (s.m[i] / bc1)) / (Math.sqrt(s.v[i] / bc2) + h.eps);
  }
}

describe('adamwStep', () => {
  for (const maxPerDispatch of [undefined, 2, 1]) {
    it(`matches float64 AdamW over 5 steps on sizes ${SIZES.join(', ')} (maxPerDispatch ${maxPerDispatch ?? 'auto'})`, async () => {
      const rt = runtime();
      const init0 = SIZES.map((n, j) => uniformF32(n, 10 + j));
      const params = init0.map((d) => tensor(d, [d.length]));
      const ms = SIZES.map((n) => zeros([n]));
      const vs = SIZES.map((n) => zeros([n]));
      const ref: AdamState[] = init0.map((d) => ({
        p: Float64Array.from(d),
        m: new Float64Array(d.length),
        v: new Float64Array(d.length),
      }));
      const k = Math.min(groupsPerDispatch(4, 0), maxPerDispatch ?? Infinity);
      const compiledBefore = rt.pipelines.compiled;
      for (let step = 1; step <= 5; step++) {
        const h: AdamWHyper = {
          lr: 1e-2 * step,
          beta1: 0.9,
          beta2: 0.999,
          eps: 1e-8,
          weightDecay: 0.05,
          step,
          gradScale: step === 3 ? 0.25 : undefined,
        };
        const gHost = SIZES.map((n, j) => uniformF32(n, 100 * step + j, 2));
        const grads = gHost.map((d) => tensor(d, [d.length]));
        const before = rt.counters.dispatches;
        adamwStep(
          SIZES.map((_, j) => ({ param: params[j], grad: grads[j], m: ms[j], v: vs[j] })),
          h,
          { maxPerDispatch },
        );
        expect(rt.counters.dispatches - before).toBe(Math.ceil(SIZES.length / k));
        ref.forEach((s, j) => adamwRef(s, gHost[j], h));
        grads.forEach((g) => g.dispose());
      }
      // One pipeline per distinct group count, however lr / step change.
      expect(rt.pipelines.compiled - compiledBefore).toBeLessThanOrEqual(2);
      for (let j = 0; j < SIZES.length; j++) {
        await expectTensorAllclose(params[j], ref[j].p, TOL.optimizer, { label: `param ${j}` });
        await expectTensorAllclose(ms[j], ref[j].m, TOL.optimizer, { label: `m ${j}` });
        await expectTensorAllclose(vs[j], ref[j].v, TOL.optimizer, { label: `v ${j}` });
      }
      [...params, ...ms, ...vs].forEach((t) => t.dispose());
    });
  }

  it('handles params that are views into one shared buffer (offsets, aliasing split)', async () => {
    const sizes = [5, 1300, 3];
    const total = sizes.reduce((a, b) => a + b, 0);
    const flatHost = uniformF32(total, 7);
    const flat = tensor(flatHost, [total]);
    const mFlat = zeros([total]);
    const vFlat = zeros([total]);
    let off = 0;
    const groups = sizes.map((n, j) => {
      const g = {
        param: viewOf(flat, [n], [1], off),
        grad: tensor(uniformF32(n, 50 + j), [n]),
        m: viewOf(mFlat, [n], [1], off),
        v: viewOf(vFlat, [n], [1], off),
      };
      off += n;
      return g;
    });
    const h: AdamWHyper = { lr: 0.1, beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 0.1, step: 1 };
    const before = runtime().counters.dispatches;
    adamwStep(groups, h);
    // Each dispatch may write a buffer through one binding only: three dispatches.
    expect(runtime().counters.dispatches - before).toBe(3);
    const refP = new Float64Array(total);
    off = 0;
    sizes.forEach((n, j) => {
      const s: AdamState = { p: Float64Array.from(flatHost.subarray(off, off + n)), m: new Float64Array(n), v: new Float64Array(n) };
      adamwRef(s, uniformF32(n, 50 + j), h);
      refP.set(s.p, off);
      off += n;
    });
    await expectTensorAllclose(flat, refP, TOL.optimizer, { label: 'flat params' });
  });

  it('rejects mismatched sizes and a grad sharing the param buffer', () => {
    const p = zeros([4]);
    expect(() =>
      adamwStep([{ param: p, grad: zeros([3]), m: zeros([4]), v: zeros([4]) }], {
        lr: 1,
        beta1: 0.9,
        beta2: 0.9,
        eps: 1,
        weightDecay: 0,
        step: 1,
      }),
    ).toThrow(/grad has 3 elements/);
    expect(() =>
      adamwStep([{ param: p, grad: p, m: zeros([4]), v: zeros([4]) }], { lr: 1, beta1: 0.9, beta2: 0.9, eps: 1, weightDecay: 0, step: 1 }),
    ).toThrow(/binds one buffer twice/);
    expect(() =>
      adamwStep([{ param: p, grad: zeros([4]), m: zeros([4]), v: zeros([4]) }], {
        lr: 1,
        beta1: 0.9,
        beta2: 0.9,
        eps: 1,
        weightDecay: 0,
        step: 0,
      }),
    ).toThrow(/step/);
  });
});

interface SgdCase {
  name: string;
  momentum: number;
  dampening?: number;
  nesterov?: boolean;
  weightDecay?: number;
}

describe('sgdStep', () => {
  const cases: SgdCase[] = [
    { name: 'plain', momentum: 0 },
    { name: 'plain + weight decay', momentum: 0, weightDecay: 0.1 },
    { name: 'momentum + dampening', momentum: 0.9, dampening: 0.2 },
    { name: 'nesterov + weight decay', momentum: 0.8, nesterov: true, weightDecay: 0.05 },
  ];
  for (const c of cases) {
    it(`matches float64 SGD (${c.name}) over 4 steps`, async () => {
      const init0 = SIZES.map((n, j) => uniformF32(n, 20 + j));
      const params = init0.map((d) => tensor(d, [d.length]));
      const bufs = SIZES.map((n) => zeros([n]));
      const refP = init0.map((d) => Float64Array.from(d));
      const refB = SIZES.map((n) => new Float64Array(n));
      for (let step = 1; step <= 4; step++) {
        const lr = 0.05 / step;
        const gHost = SIZES.map((n, j) => uniformF32(n, 300 + 10 * step + j));
        const grads = gHost.map((d) => tensor(d, [d.length]));
        sgdStep(
          SIZES.map((_, j) => ({ param: params[j], grad: grads[j], momentum: bufs[j] })),
          { lr, momentum: c.momentum, dampening: c.dampening, nesterov: c.nesterov, weightDecay: c.weightDecay, firstStep: step === 1 },
          { maxPerDispatch: 2 },
        );
        for (let j = 0; j < SIZES.length; j++) {
          const p = refP[j];
          const b = refB[j];
          for (let i = 0; i < p.length; i++) {
            let g = gHost[j][i] + (c.weightDecay ?? 0) * p[i];
            if (c.momentum !== 0) {
              b[i] = step === 1 ? g : c.momentum * b[i] + (1 - (c.dampening ?? 0)) * g;
              g = c.nesterov ? g + c.momentum * b[i] : b[i];
            }
            p[i] -= lr * g;
          }
        }
        grads.forEach((g) => g.dispose());
      }
      for (let j = 0; j < SIZES.length; j++) {
        await expectTensorAllclose(params[j], refP[j], TOL.optimizer, { label: `param ${j}` });
        if (c.momentum !== 0) await expectTensorAllclose(bufs[j], refB[j], TOL.optimizer, { label: `momentum ${j}` });
        else expect(Array.from(await toArray(bufs[j])).every((x) => x === 0)).toBe(true);
      }
      [...params, ...bufs].forEach((t) => t.dispose());
    });
  }

  it('needs a momentum buffer per group when momentum > 0', () => {
    expect(() => sgdStep([{ param: zeros([2]), grad: zeros([2]) }], { lr: 1, momentum: 0.9, firstStep: true })).toThrow(
      /no momentum buffer/,
    );
  });
});

describe('emaUpdate', () => {
  it('matches float64 over 6 updates on three pairs, several per dispatch', async () => {
    const emaHost = SIZES.map((n, j) => uniformF32(n, 40 + j));
    const emas = emaHost.map((d) => tensor(d, [d.length]));
    const ref = emaHost.map((d) => Float64Array.from(d));
    const decay = 0.9;
    for (let s = 0; s < 6; s++) {
      const pHost = SIZES.map((n, j) => uniformF32(n, 500 + 10 * s + j));
      const ps = pHost.map((d) => tensor(d, [d.length]));
      const before = runtime().counters.dispatches;
      emaUpdate(
        SIZES.map((_, j) => ({ ema: emas[j], param: ps[j] })),
        decay,
      );
      expect(runtime().counters.dispatches - before).toBe(Math.ceil(SIZES.length / groupsPerDispatch(2, 0)));
      ref.forEach((e, j) => {
        for (let i = 0; i < e.length; i++) e[i] = decay * e[i] + (1 - decay) * pHost[j][i];
      });
      ps.forEach((t) => t.dispose());
    }
    for (let j = 0; j < SIZES.length; j++) await expectTensorAllclose(emas[j], ref[j], TOL.optimizer, { label: `ema ${j}` });
    emas.forEach((t) => t.dispose());
  });
});

function sumsqRef(hosts: Float32Array[]): number {
  let s = 0;
  for (const h of hosts) for (let i = 0; i < h.length; i++) s += h[i] * h[i];
  return s;
}

describe('sumOfSquares', () => {
  const SQ_SIZES = [1, 7, 1000, 1024, 1025, 5000, 3, 2048, 333, 12345];

  it('sums 10 tensors with 4 per dispatch (3 partial dispatches + 1 final), deterministically', async () => {
    const hosts = SQ_SIZES.map((n, j) => uniformF32(n, 60 + j));
    const ts = hosts.map((d) => tensor(d, [d.length]));
    const out = zeros([1]);
    const before = runtime().counters.dispatches;
    sumOfSquares(ts, out, { maxPerDispatch: 4 });
    expect(runtime().counters.dispatches - before).toBe(4);
    const first = await toArray(out);
    await expectTensorAllclose(out, [sumsqRef(hosts)], TOL.optimizer, { label: 'sumsq' });
    sumOfSquares(ts, out, { maxPerDispatch: 4 });
    expect(Array.from(await toArray(out))).toEqual(Array.from(first));
    [...ts, out].forEach((t) => t.dispose());
  });

  it('returns its partials buffer to the pool', async () => {
    await settleGarbage();
    const base = runtime().stats();
    const ts = [tensor(uniformF32(3000, 1), [3000]), tensor(uniformF32(5, 2), [5])];
    const out = zeros([1]);
    sumOfSquares(ts, out);
    clipScale(out, 1, out);
    await runtime().sync();
    [...ts, out].forEach((t) => t.dispose());
    const after = runtime().stats();
    expect(after.liveBuffers).toBe(base.liveBuffers);
    expect(after.liveBytes).toBe(base.liveBytes);
  });

  it('uses the adapter k by default and writes at an offset', async () => {
    const k = groupsPerDispatch(1, 1);
    const n = k + 5;
    const hosts = Array.from({ length: n }, (_, j) => uniformF32(17 * j + 1, 80 + j, 3));
    const ts = hosts.map((d) => tensor(d, [d.length]));
    const outBase = zeros([3]);
    const out = viewOf(outBase, [1], [1], 2);
    const before = runtime().counters.dispatches;
    sumOfSquares(ts, out);
    expect(runtime().counters.dispatches - before).toBe(Math.ceil(n / k) + 1);
    await expectTensorAllclose(outBase, [0, 0, sumsqRef(hosts)], TOL.optimizer, { label: 'sumsq at offset 2' });
    sumOfSquares([], out);
    await expectTensorAllclose(outBase, [0, 0, 0], TOL.optimizer, { label: 'empty sum' });
    [...ts, out, outBase].forEach((t) => t.dispose());
  });
});

describe('clipping through the GPU scale buffer', () => {
  for (const maxNorm of [1.5, 1e6]) {
    it(`AdamW and SGD with clipScale equal host clipping (maxNorm ${maxNorm}), no read-back`, async () => {
      const rt = runtime();
      const gHost = SIZES.map((n, j) => uniformF32(n, 90 + j));
      const pHost = SIZES.map((n, j) => uniformF32(n, 95 + j));
      const norm = Math.sqrt(sumsqRef(gHost));
      const hostScale = Math.min(1, maxNorm / (norm + 1e-6));
      if (maxNorm < norm) expect(hostScale).toBeLessThan(0.5);
      else expect(hostScale).toBe(1);

      const grads = gHost.map((d) => tensor(d, [d.length]));
      const mk = () => ({ p: pHost.map((d) => tensor(d, [d.length])), m: SIZES.map((n) => zeros([n])), v: SIZES.map((n) => zeros([n])) });
      const gpu = mk();
      const host = mk();
      const sumsq = zeros([1]);
      const scale = zeros([1]);
      const h: AdamWHyper = { lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, step: 1 };
      const readbacks = rt.counters.readbacks;
      for (let step = 1; step <= 3; step++) {
        sumOfSquares(grads, sumsq);
        clipScale(sumsq, maxNorm, scale);
        adamwStep(
          SIZES.map((_, j) => ({ param: gpu.p[j], grad: grads[j], m: gpu.m[j], v: gpu.v[j] })),
          { ...h, step, gradScaleBuffer: scale },
        );
        adamwStep(
          SIZES.map((_, j) => ({ param: host.p[j], grad: grads[j], m: host.m[j], v: host.v[j] })),
          { ...h, step, gradScale: hostScale },
        );
      }
      expect(rt.counters.readbacks).toBe(readbacks);
      await expectTensorAllclose(scale, [hostScale], TOL.optimizer, { label: 'scale', tighten: { rtol: 1e-6 } });
      const ref: AdamState[] = pHost.map((d) => ({
        p: Float64Array.from(d),
        m: new Float64Array(d.length),
        v: new Float64Array(d.length),
      }));
      for (let step = 1; step <= 3; step++) ref.forEach((s, j) => adamwRef(s, gHost[j], { ...h, step, gradScale: hostScale }));
      for (let j = 0; j < SIZES.length; j++) {
        const hostP = await toArray(host.p[j]);
        await expectTensorAllclose(gpu.p[j], hostP, TOL.optimizer, { label: `gpu-clipped vs host-clipped param ${j}` });
        await expectTensorAllclose(gpu.p[j], ref[j].p, TOL.optimizer, { label: `gpu-clipped vs float64 param ${j}` });
      }

      // SGD with momentum through the same buffer, plus a host gradScale on top.
      const sp = pHost.map((d) => tensor(d, [d.length]));
      const sb = SIZES.map((n) => zeros([n]));
      sgdStep(
        SIZES.map((_, j) => ({ param: sp[j], grad: grads[j], momentum: sb[j] })),
        { lr: 0.1, momentum: 0.9, firstStep: true, gradScale: 0.5, gradScaleBuffer: scale },
      );
      for (let j = 0; j < SIZES.length; j++) {
        const r = Array.from(pHost[j], (p, i) => p - 0.1 * gHost[j][i] * 0.5 * hostScale);
        await expectTensorAllclose(sp[j], r, TOL.optimizer, { label: `sgd clipped param ${j}` });
      }
      [...grads, ...gpu.p, ...gpu.m, ...gpu.v, ...host.p, ...host.m, ...host.v, ...sp, ...sb, sumsq, scale].forEach((t) => t.dispose());
    });
  }

  it('clipScale reads and writes one buffer at two offsets', async () => {
    const both = tensor(new Float32Array([0, 16]), [2]);
    clipScale(viewOf(both, [1], [1], 1), 2, viewOf(both, [1], [1], 0));
    await expectTensorAllclose(both, [2 / (4 + 1e-6), 16], TOL.optimizer, { label: 'aliased clipScale', tighten: { rtol: 1e-6 } });
    both.dispose();
  });
});
