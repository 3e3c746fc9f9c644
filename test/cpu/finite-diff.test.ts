import { describe, expect, it } from 'vitest';
import {
  compareArrays,
  layerNorm,
  mul,
  nd,
  ndRandn,
  numericalGradient,
  numericalVjp,
  relErrorByMax,
  softmax,
  sumAll,
} from '../../src/cpu/index.js';

describe('numericalGradient', () => {
  it('gradient of sum(x^2) is 2x', () => {
    const x = ndRandn([3, 4], 1);
    const g = numericalGradient((t) => sumAll(mul(t, t)), x);
    const r = compareArrays(
      g.data,
      x.data.map((v) => 2 * v),
      { atol: 1e-8, rtol: 1e-8, shape: x.shape },
    );
    expect(r.ok, r.message).toBe(true);
    expect(g.shape).toEqual([3, 4]);
  });

  it('does not modify its input', () => {
    const x = nd([1, 2, 3], [3]);
    numericalGradient((t) => sumAll(t), x);
    expect(Array.from(x.data)).toEqual([1, 2, 3]);
  });

  it('VJP of softmax matches the analytic s * (w - <s, w>)', () => {
    const x = ndRandn([5], 2);
    const w = ndRandn([5], 3);
    const s = softmax(x, 0);
    const dot = s.data.reduce((a, v, i) => a + v * w.data[i], 0);
    const analytic = s.data.map((v, i) => v * (w.data[i] - dot));
    const g = numericalVjp((t) => softmax(t, 0), x, w);
    expect(relErrorByMax(g.data, analytic)).toBeLessThan(1e-8);
  });

  it('layerNorm gradient sums to zero over the group (shift invariance)', () => {
    const x = ndRandn([6], 4);
    const w = ndRandn([6], 5);
    const g = numericalVjp((t) => layerNorm(t, [6]), x, w);
    expect(Math.abs(sumAll(g))).toBeLessThan(1e-8);
  });
});
