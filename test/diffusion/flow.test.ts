/**
 * The flow-matching training batch (spec §4.1–4.2) against float64 restatements written here:
 * x_t = (1 − t)·x + t·ε and the velocity target ε − x, element by element; the time
 * distributions by their moments; the time shift against the closed form and the spec's values.
 *
 * Tolerances:
 * - x_t vs (1 − t)·x + t·ε recomputed in float64 from the returned t and ε = target + x:
 *   |Δ| ≤ 1e-5·(1 + |x| + |ε|) (a few f32 roundings of O(1) values).
 * - Moments of n = 16384 draws: each within 6 standard errors of the exact value (fixed seeds, so
 *   the outcome is deterministic; 6σ leaves no room for a flaky pass/fail on a correct engine
 *   while a sign, a swapped distribution or a missing shift moves them by ≫ 6σ).
 * - shiftTime vs the spec's 4-decimal values: 5e-5; shiftTimes (GPU, f32) vs shiftTime: 1e-6.
 */
import { describe, expect, it } from 'vitest';
import { flowMatchingBatch, shiftAlpha, shiftTime, shiftTimes } from '../../src/diffusion/flow.js';
import { tensor, toArray } from '../../src/tensor/creation.js';
import { scopeAsync } from '../../src/tensor/scope.js';
import { randomData } from '../helpers/random.js';
import { useGpu } from '../helpers/setup.js';

useGpu();

const SIGMAS = 6;

function meanVar(a: ArrayLike<number>): { mean: number; variance: number; m4: number } {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  const mean = s / a.length;
  let v = 0;
  let m4 = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - mean;
    v += d * d;
    m4 += d ** 4;
  }
  return { mean, variance: v / a.length, m4: m4 / a.length };
}

/** Asserts sample mean and variance within SIGMAS standard errors of the exact mean and variance. */
function expectMoments(a: ArrayLike<number>, mean: number, variance: number, m4: number, label: string): void {
  const n = a.length;
  const got = meanVar(a);
  const seMean = Math.sqrt(variance / n);
  const seVar = Math.sqrt((m4 - variance ** 2) / n);
  expect(Math.abs(got.mean - mean), `${label}: mean ${got.mean} vs ${mean} (se ${seMean})`).toBeLessThan(SIGMAS * seMean);
  expect(Math.abs(got.variance - variance), `${label}: variance ${got.variance} vs ${variance} (se ${seVar})`).toBeLessThan(SIGMAS * seVar);
}

/** Undoes the shift: tₙ = t / (α − (α − 1)·t). */
const unshift = (t: number, alpha: number) => t / (alpha - (alpha - 1) * t);

describe('flowMatchingBatch: x_t and the velocity target', () => {
  // Latents with a non-zero mean and unit-ish spread, so x, ε and their combinations differ.
  const B = 64;
  const shape = [B, 4, 3, 3];
  const per = 4 * 3 * 3;
  const xHost = randomData(B * per, 7, -2, 3);
  const alpha = shiftAlpha(per * 100); // √(3600/4096) < 1; the logit-normal case uses α = √48 > 1

  for (const [dist, a] of [
    ['uniform', alpha],
    ['logit-normal', 6.928203230275509],
  ] as const) {
    it(`${dist}, α = ${a.toFixed(4)}: x_t = (1 − t)·x + t·ε with target ε − x, ε ~ N(0, 1) independent of x`, () =>
      scopeAsync(async () => {
        const x = tensor(Float32Array.from(xHost), shape);
        const { xt, t, target } = flowMatchingBatch(x, a, { timeDist: dist, seed: 1234 });
        expect(xt.shape).toEqual(shape);
        expect(target.shape).toEqual(shape);
        expect(t.shape).toEqual([B]);
        const [xtH, tH, tgH] = await Promise.all([toArray(xt), toArray(t), toArray(target)]);
        const xs = Float32Array.from(xHost);
        const eps = new Float64Array(B * per);
        let worst = 0;
        for (let b = 0; b < B; b++) {
          expect(tH[b]).toBeGreaterThanOrEqual(0);
          expect(tH[b]).toBeLessThan(1);
          for (let j = 0; j < per; j++) {
            const i = b * per + j;
            eps[i] = tgH[i] + xs[i];
            const want = (1 - tH[b]) * xs[i] + tH[b] * eps[i];
            worst = Math.max(worst, Math.abs(xtH[i] - want) / (1 + Math.abs(xs[i]) + Math.abs(eps[i])));
          }
        }
        expect(worst, 'x_t is not (1 − t)·x + t·(target + x)').toBeLessThan(1e-5);
        // ε = target + x must be standard normal and uncorrelated with x: a target x − ε gives
        // ε' = 2x − ε (mean ≈ 1, variance ≈ 4 + …, strongly correlated with x).
        const { mean, variance } = meanVar(eps);
        const n = eps.length;
        expect(Math.abs(mean)).toBeLessThan(SIGMAS / Math.sqrt(n));
        expect(Math.abs(variance - 1)).toBeLessThan(SIGMAS * Math.sqrt(2 / n));
        const xm = meanVar(xs);
        let cov = 0;
        for (let i = 0; i < n; i++) cov += (eps[i] - mean) * (xs[i] - xm.mean);
        const corr = cov / n / Math.sqrt(variance * xm.variance);
        expect(Math.abs(corr), `corr(ε, x) = ${corr}`).toBeLessThan(SIGMAS / Math.sqrt(n));
      }));
  }

  it('the same seed gives the same batch; another seed gives another', () =>
    scopeAsync(async () => {
      const x = tensor(Float32Array.from(xHost), shape);
      const a1 = flowMatchingBatch(x, 2, { seed: 5 });
      const a2 = flowMatchingBatch(x, 2, { seed: 5 });
      const a3 = flowMatchingBatch(x, 2, { seed: 6 });
      expect(Array.from(await toArray(a1.xt))).toEqual(Array.from(await toArray(a2.xt)));
      expect(Array.from(await toArray(a1.t))).toEqual(Array.from(await toArray(a2.t)));
      expect(Array.from(await toArray(a1.t))).not.toEqual(Array.from(await toArray(a3.t)));
      expect(Array.from(await toArray(a1.target))).not.toEqual(Array.from(await toArray(a3.target)));
    }));

  it('consecutive seeds share no draws: the noise of seed s is not the time draw of seed s + 1', () =>
    scopeAsync(async () => {
      // Before times and noise took two streams of one seed, ε of seed s was, element by element,
      // the normal behind seed s + 1's logit-normal times (and shared the uniform times' bits).
      const x = tensor(Float32Array.from(xHost), shape);
      const first = flowMatchingBatch(x, 1, { timeDist: 'logit-normal', seed: 5 });
      const next = flowMatchingBatch(x, 1, { timeDist: 'logit-normal', seed: 6 });
      const eps = await toArray(first.target);
      const t = await toArray(next.t);
      let worst = Infinity;
      for (let b = 0; b < t.length; b++) {
        const logit = Math.log(t[b] / (1 - t[b]));
        worst = Math.min(worst, Math.abs(logit - (eps[b * (eps.length / t.length)] + xHost[b * (eps.length / t.length)])));
      }
      expect(worst, 'closest |logit t(s + 1) − ε(s)| over the batch').toBeGreaterThan(1e-3);
    }));
});

describe('flowMatchingBatch: time distributions (n = 16384)', () => {
  const n = 16384;
  const draw = (dist: 'uniform' | 'logit-normal', alpha: number, seed: number) =>
    scopeAsync(async () => {
      const x = tensor(new Float32Array(n), [n, 1]);
      return Float64Array.from(await toArray(flowMatchingBatch(x, alpha, { timeDist: dist, seed }).t));
    });

  it('uniform on [0, 0.999] (α = 1: no shift)', async () => {
    const t = await draw('uniform', 1, 11);
    const b = 0.999;
    expect(Math.min(...t)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...t)).toBeLessThanOrEqual(b);
    expectMoments(t, b / 2, b ** 2 / 12, b ** 4 / 80, 'uniform tₙ');
  });

  it('uniform, shifted by α = √48: unshifting recovers U(0, 0.999); the shifted mean matches ∫ shift', async () => {
    const alpha = Math.sqrt(48);
    const t = await draw('uniform', alpha, 12);
    const tn = t.map((v) => unshift(v, alpha));
    const b = 0.999;
    expectMoments(tn, b / 2, b ** 2 / 12, b ** 4 / 80, 'unshifted tₙ');
    // E[shift(U)] by the midpoint rule in float64 (the shift pushes mass towards t = 1).
    const K = 200000;
    let m1 = 0;
    let m2 = 0;
    let m4c = 0;
    const vals = new Float64Array(K);
    for (let k = 0; k < K; k++) vals[k] = shiftTime((b * (k + 0.5)) / K, alpha);
    for (const v of vals) m1 += v / K;
    for (const v of vals) m2 += (v - m1) ** 2 / K;
    for (const v of vals) m4c += (v - m1) ** 4 / K;
    expect(m1).toBeGreaterThan(0.75); // ≈ 0.787, against 0.4995 unshifted
    expectMoments(t, m1, m2, m4c, 'shifted t');
  });

  it('logit-normal(0, 1): logit(tₙ) has mean 0 and variance 1 (uniform would give π²/3)', async () => {
    const t = await draw('logit-normal', 1, 13);
    expect(Math.max(...t)).toBeLessThanOrEqual(0.999);
    expect(Math.min(...t)).toBeGreaterThan(0);
    const z = t.map((v) => Math.log(v / (1 - v)));
    expectMoments(z, 0, 1, 3, 'logit(tₙ)');
  });

  it('logit-normal with α = √48: unshift then logit is N(0, 1)', async () => {
    const alpha = Math.sqrt(48);
    const t = await draw('logit-normal', alpha, 14);
    const z = t.map((v) => {
      const tn = unshift(v, alpha);
      return Math.log(tn / (1 - tn));
    });
    // f32 rounding of t near 1 blurs logit(tₙ) slightly for the largest draws; 6σ is still ≫ that.
    expectMoments(z, 0, 1, 3, 'logit(unshift(t))');
  });
});

describe('time shift', () => {
  it('shiftAlpha: α = √(m/4096) for the spec table', () => {
    expect(shiftAlpha(16 * 16 * 768)).toBeCloseTo(Math.sqrt(48), 12);
    expect(shiftAlpha(32 * 32 * 768)).toBeCloseTo(13.856406, 6);
    expect(shiftAlpha(16 * 16 * 384)).toBeCloseTo(4.898979, 6);
    expect(shiftAlpha(16 * 16 * 1024)).toBe(8);
    expect(() => shiftAlpha(0)).toThrow(RangeError);
  });

  it("shiftTime matches the spec's reference values for α = √48", () => {
    const alpha = Math.sqrt(48);
    const ref: [number, number][] = [
      [0.1, 0.435],
      [0.25, 0.6978],
      [0.5, 0.8739],
      [0.75, 0.9541],
      [0.9, 0.9842],
    ];
    for (const [tn, t] of ref) expect(Math.abs(shiftTime(tn, alpha) - t), `tₙ = ${tn}`).toBeLessThan(5e-5);
    expect(shiftTime(0, alpha)).toBe(0);
    expect(shiftTime(1, alpha)).toBeCloseTo(1, 15);
    expect(shiftTime(0.37, 1)).toBeCloseTo(0.37, 15);
  });

  it('shiftTimes (GPU) equals the closed form α·tₙ/(1 + (α − 1)·tₙ) for α < 1, = 1 and > 1', () =>
    scopeAsync(async () => {
      const tn = Array.from({ length: 101 }, (_, i) => (0.999 * i) / 100);
      for (const alpha of [0.3535533905932738, 1, Math.sqrt(48), 13.856406460551018]) {
        const got = await toArray(shiftTimes(tensor(Float32Array.from(tn), [tn.length]), alpha));
        let worst = 0;
        tn.forEach((v, i) => {
          const f = Math.fround(v);
          worst = Math.max(worst, Math.abs(got[i] - (alpha * f) / (1 + (alpha - 1) * f)));
        });
        expect(worst, `α = ${alpha}`).toBeLessThan(1e-6);
      }
    }));
});
