/**
 * The public API exactly as users import it (the package entry), on shapes that are not tile
 * multiples, against the float64 reference: matmul, softmax, layerNorm, rmsNorm, attention
 * forward and backward, and AdamW steps. Tolerance: 1e-4 relative-by-max.
 */
import { describe, expect, it } from 'vitest';
import * as C from '../../src/cpu/index.js';
import { F, init, noGrad, optim, randn, scope, tensor, zeros } from '../../src/index.js';
import { expectAllclose, TOL } from '../helpers/compare.js';
import { randomData } from '../helpers/random.js';
import { useGpu } from '../helpers/setup.js';

useGpu();

const nd = (d: Float64Array, s: number[]) => C.nd(d, s);

describe('public API vs float64', () => {
  it('init() works and repeated calls return the same runtime', async () => {
    expect(await init()).toBe(await init());
  });

  it('matmul + bias, softmax, layerNorm, rmsNorm', async () => {
    const a = randomData(33 * 65, 1);
    const b = randomData(65 * 17, 2);
    const bias = randomData(17, 3);
    const y = tensor(Float32Array.from(a), [33, 65])
      .matmul(tensor(Float32Array.from(b), [65, 17]))
      .add(tensor(Float32Array.from(bias), [17]));
    const yRef = C.add(C.matmul(nd(a, [33, 65]), nd(b, [65, 17])), nd(bias, [17]));
    expectAllclose(await y.toArray(), yRef.data, TOL.modelForward);

    const x = randomData(7 * 129, 4, -3, 3);
    const xt = tensor(Float32Array.from(x), [7, 129]);
    expectAllclose(await F.softmax(xt, -1).toArray(), C.softmax(nd(x, [7, 129]), -1).data, TOL.modelForward);
    const w = randomData(129, 5);
    const bb = randomData(129, 6);
    const ln = F.layerNorm(xt, [129], tensor(Float32Array.from(w), [129]), tensor(Float32Array.from(bb), [129]), 1e-5);
    expectAllclose(await ln.toArray(), C.layerNorm(nd(x, [7, 129]), [129], nd(w, [129]), nd(bb, [129]), 1e-5).data, TOL.modelForward);
    const rms = F.rmsNorm(xt, [129], tensor(Float32Array.from(w), [129]), 1e-6);
    expectAllclose(await rms.toArray(), C.rmsNorm(nd(x, [7, 129]), [129], nd(w, [129]), 1e-6).data, TOL.modelForward);
  });

  it('attention forward and backward', async () => {
    const shape = [2, 3, 37, 16];
    const n = 2 * 3 * 37 * 16;
    const [q, k, v, go] = [11, 12, 13, 14].map((s) => randomData(n, s));
    const qt = tensor(Float32Array.from(q), shape);
    const kt = tensor(Float32Array.from(k), shape);
    const vt = tensor(Float32Array.from(v), shape);
    for (const t of [qt, kt, vt]) t.requiresGrad = true;
    const o = F.scaledDotProductAttention(qt, kt, vt, { scale: 0.3 });
    const oRef = C.scaledDotProductAttention(nd(q, shape), nd(k, shape), nd(v, shape), 0.3);
    expectAllclose(await o.toArray(), oRef.data, TOL.modelForward);
    o.mul(tensor(Float32Array.from(go), shape))
      .sum()
      .backward();
    const f = (qq: C.NDArray, kk: C.NDArray, vv: C.NDArray) => {
      const out = C.scaledDotProductAttention(qq, kk, vv, 0.3);
      let s = 0;
      for (let i = 0; i < out.data.length; i++) s += out.data[i] * go[i];
      return s;
    };
    // Central differences on a subset of entries (the full Jacobian would be slow): every 13th.
    for (const [t, base, which] of [
      [qt, q, 0],
      [kt, k, 1],
      [vt, v, 2],
    ] as const) {
      const g = await t.grad!.toArray();
      let worst = 0;
      let scale = 0;
      for (let i = 0; i < n; i += 13) {
        const plus = Float64Array.from(base);
        const minus = Float64Array.from(base);
        plus[i] += 1e-6;
        minus[i] -= 1e-6;
        const args = (arr: Float64Array) => [q, k, v].map((d, j) => nd(j === which ? arr : d, shape)) as [C.NDArray, C.NDArray, C.NDArray];
        const num = (f(...args(plus)) - f(...args(minus))) / 2e-6;
        worst = Math.max(worst, Math.abs(num - g[i]));
        scale = Math.max(scale, Math.abs(num));
      }
      expect(worst / scale).toBeLessThan(1e-3);
    }
  });

  it('AdamW steps agree with a float64 AdamW', async () => {
    const w0 = randomData(5 * 7, 21);
    const x = randomData(3 * 7, 22);
    const w = tensor(Float32Array.from(w0), [5, 7]);
    w.requiresGrad = true;
    const opt = new optim.AdamW([w], { lr: 0.01, betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0.1 });
    const xs = tensor(Float32Array.from(x), [3, 7]);
    for (let s = 0; s < 3; s++) {
      scope(() => {
        const loss = F.linear(xs, w).pow(2).mean();
        loss.backward();
        opt.step();
        opt.zeroGrad();
      });
    }
    // Reference: the same three steps in float64.
    const W = Float64Array.from(w0);
    const m = new Float64Array(35);
    const v = new Float64Array(35);
    for (let s = 1; s <= 3; s++) {
      const y = C.matmul(nd(x, [3, 7]), C.transpose(nd(W, [5, 7]), 0, 1));
      const gy = y.data.map((t) => (2 * t) / 15);
      const gW = C.matmul(C.transpose(nd(gy, [3, 5]), 0, 1), nd(x, [3, 7])).data;
      for (let i = 0; i < 35; i++) {
        W[i] *= 1 - 0.01 * 0.1;
        m[i] = 0.9 * m[i] + 0.1 * gW[i];
        v[i] = 0.95 * v[i] + 0.05 * gW[i] ** 2;
        W[i] -= (0.01 * (m[i] / (1 - 0.9 ** s))) / (Math.sqrt(v[i] / (1 - 0.95 ** s)) + 1e-8);
      }
    }
    expectAllclose(await w.toArray(), W, TOL.modelForward);
    expect(noGrad(() => zeros([2]).add(1)).requiresGrad).toBe(false);
    void randn;
  });
});

describe('public API conveniences', () => {
  it('crossEntropy and embedding accept integer-valued f32 labels / ids; interpolate takes a number size', async () => {
    const logits = tensor([
      [1, 2, 3],
      [0.5, 0.1, -1],
    ]);
    const a = await F.crossEntropy(logits, tensor([2, 0])).item();
    const b = await F.crossEntropy(logits, [2, 0]).item();
    expect(a).toBeCloseTo(b, 6);
    const table = tensor([
      [1, 2],
      [3, 4],
      [5, 6],
    ]);
    expect(await F.embedding(tensor([2, 0]), table).tolist()).toEqual([
      [5, 6],
      [1, 2],
    ]);
    expect(F.interpolate(zeros([1, 1, 4, 4]), 2).shape).toEqual([1, 1, 2, 2]);
  });
});
