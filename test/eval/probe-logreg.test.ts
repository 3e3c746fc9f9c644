/**
 * The linear probe's classifier (src/eval/probe-logreg.ts, fitProbe in src/eval/probe.ts):
 *  - against an independent float64 reference: the same full-batch AdamW on softmax cross
 *    entropy (hand-written float64 forward and analytic gradient, src/cpu/optim.ts AdamW64; same
 *    initial W and b, same lr, betas, eps, weight decay on W only, no randomness) for 200 steps
 *    on random data; the loss of every step and the final W, b agree within TOL (rel-by-max), and
 *    the predicted classes are the same (rows whose float64 top-2 margin is below MARGIN are
 *    left out as ties; none are expected and the count is asserted); three weight decays
 *    trained together as one model equal three separate float64 fits;
 *  - linearly separable data → train and test accuracy 1; random labels → held-out accuracy
 *    within 4.5 binomial standard deviations of chance;
 *  - the standardiser against a direct float64 computation;
 *  - bad input: labels out of range, one class only, too few images per class, NaN features.
 */
import { describe, expect, it } from 'vitest';
import { AdamW64 } from '../../src/cpu/optim.js';
import { DEFAULT_WEIGHT_DECAYS, fitProbe } from '../../src/eval/probe.js';
import {
  accuracyOf,
  fitStandardizer,
  predictLogReg,
  ProbeError,
  standardize,
  trainLogReg,
  trainLogRegGrid,
} from '../../src/eval/probe-logreg.js';
import { relByMax } from '../helpers/compare.js';
import { randomData, randomInts, randn } from '../helpers/random.js';
import { useGpu } from '../helpers/setup.js';

useGpu();

/**
 * f32 GPU against float64 (rel-by-max), measured: 200 AdamW steps of a 6×3 problem — loss 3.7e-7,
 * W 2.8e-6, b 3.4e-6; three decays together, 150 steps of 5×4 — W ≤ 7.1e-7, b ≤ 2.6e-6, mean loss 2.0e-7.
 */
const TOL = 1e-4;
const MARGIN = 1e-4;

interface Problem {
  x: Float32Array;
  labels: Int32Array;
  n: number;
  dim: number;
  classes: number;
}

/** Float64 mean cross entropy of X·W + b and its gradients. */
function lossAndGrads(p: Problem, W: Float64Array, b: Float64Array): { loss: number; dW: Float64Array; db: Float64Array } {
  const { n, dim: D, classes: C, x, labels } = p;
  const dW = new Float64Array(D * C);
  const db = new Float64Array(C);
  const z = new Float64Array(C);
  let loss = 0;
  for (let i = 0; i < n; i++) {
    let mx = -Infinity;
    for (let c = 0; c < C; c++) {
      let s = b[c];
      for (let d = 0; d < D; d++) s += x[i * D + d] * W[d * C + c];
      z[c] = s;
      mx = Math.max(mx, s);
    }
    let se = 0;
    for (let c = 0; c < C; c++) se += Math.exp(z[c] - mx);
    const lse = mx + Math.log(se);
    loss += lse - z[labels[i]];
    for (let c = 0; c < C; c++) {
      const g = (Math.exp(z[c] - lse) - (c === labels[i] ? 1 : 0)) / n;
      db[c] += g;
      for (let d = 0; d < D; d++) dW[d * C + c] += g * x[i * D + d];
    }
  }
  return { loss: loss / n, dW, db };
}

function logits64(p: Problem, W: ArrayLike<number>, b: ArrayLike<number>, i: number): number[] {
  return Array.from({ length: p.classes }, (_, c) => {
    let s = b[c];
    for (let d = 0; d < p.dim; d++) s += p.x[i * p.dim + d] * W[d * p.classes + c];
    return s;
  });
}

/** Gaussian blobs: class k centred at `spread`·(a fixed random direction k). */
function blobs(n: number, dim: number, classes: number, spread: number, seed: number): Problem {
  const centres = randn(classes * dim, seed);
  const labels = Int32Array.from({ length: n }, (_, i) => i % classes);
  const noise = randn(n * dim, seed + 1);
  const x = Float32Array.from({ length: n * dim }, (_, k) => spread * centres[labels[Math.floor(k / dim)] * dim + (k % dim)] + noise[k]);
  return { x, labels, n, dim, classes };
}

describe('GPU logistic regression against float64', () => {
  it('200 full-batch AdamW steps: same loss trajectory, parameters and predictions', async () => {
    const p = blobs(48, 6, 3, 0.6, 11);
    const W0 = Float32Array.from(randomData(6 * 3, 13, -0.3, 0.3));
    const b0 = Float32Array.from(randomData(3, 14, -0.1, 0.1));
    const opts = { lr: 1e-2, betas: [0.9, 0.999] as [number, number], eps: 1e-8 };
    const wd = 0.05;
    const steps = 200;
    const fit = await trainLogReg({ x: p.x, labels: p.labels, dim: p.dim }, p.classes, {
      epochs: steps,
      ...opts,
      weightDecay: wd,
      init: { W: W0, b: b0 },
    });
    expect(fit.steps).toBe(steps);
    expect(fit.losses).toHaveLength(steps);

    const W = Float64Array.from(W0);
    const b = Float64Array.from(b0);
    const optW = new AdamW64([W], { ...opts, weightDecay: wd });
    const optB = new AdamW64([b], { ...opts, weightDecay: 0 });
    const ref: number[] = [];
    for (let s = 0; s < steps; s++) {
      const { loss, dW, db } = lossAndGrads(p, W, b);
      ref.push(loss);
      optW.step([dW]);
      optB.step([db]);
    }
    // The problem is not trivial: the loss falls well below its start but not to 0.
    expect(ref[steps - 1]).toBeLessThan(0.8 * ref[0]);
    expect(relByMax(fit.losses, ref), 'loss trajectory').toBeLessThan(TOL);
    expect(relByMax(fit.model.W, W), 'W').toBeLessThan(TOL);
    expect(relByMax(fit.model.b, b), 'b').toBeLessThan(TOL);

    const pred = await predictLogReg(fit.model, p.x);
    let ties = 0;
    for (let i = 0; i < p.n; i++) {
      const z = logits64(p, W, b, i);
      const sorted = [...z].sort((u, v) => v - u);
      if (sorted[0] - sorted[1] < MARGIN) {
        ties++;
        continue;
      }
      expect(pred[i], `row ${i}`).toBe(z.indexOf(sorted[0]));
    }
    expect(ties).toBe(0);
  });

  it('three weight decays trained together equal three separate float64 fits', async () => {
    const p = blobs(40, 5, 4, 0.8, 17);
    const W0 = Float32Array.from(randomData(5 * 4, 18, -0.2, 0.2));
    const b0 = Float32Array.from(randomData(4, 19, -0.1, 0.1));
    const opts = { lr: 2e-2, betas: [0.9, 0.999] as [number, number], eps: 1e-8 };
    const wds = [0, 0.5, 3];
    const steps = 150;
    const fits = await trainLogRegGrid({ x: p.x, labels: p.labels, dim: p.dim }, p.classes, {
      epochs: steps,
      ...opts,
      weightDecays: wds,
      init: { W: W0, b: b0 },
      lossEveryStep: true,
    });
    const meanRef = new Float64Array(steps);
    const refs = wds.map((wd) => {
      const W = Float64Array.from(W0);
      const b = Float64Array.from(b0);
      const optW = new AdamW64([W], { ...opts, weightDecay: wd });
      const optB = new AdamW64([b], { ...opts, weightDecay: 0 });
      for (let s = 0; s < steps; s++) {
        const { loss, dW, db } = lossAndGrads(p, W, b);
        meanRef[s] += loss / wds.length;
        optW.step([dW]);
        optB.step([db]);
      }
      return { W, b };
    });
    // The decays matter: the strongest one leaves visibly smaller weights.
    const norm = (w: ArrayLike<number>) => Math.sqrt(Array.from(w).reduce((a, v) => a + v * v, 0));
    expect(norm(refs[2].W)).toBeLessThan(0.8 * norm(refs[0].W));
    fits.forEach((f, k) => {
      expect(relByMax(f.model.W, refs[k].W), `W, weight decay ${wds[k]}`).toBeLessThan(TOL);
      expect(relByMax(f.model.b, refs[k].b), `b, weight decay ${wds[k]}`).toBeLessThan(TOL);
    });
    expect(relByMax(fits[0].losses, meanRef), 'mean loss over the candidates').toBeLessThan(TOL);
  });

  it('mini-batches visit every row once per epoch (a seeded order) and still fit', async () => {
    const p = blobs(60, 4, 3, 3, 21);
    const fit = await trainLogReg({ x: p.x, labels: p.labels, dim: p.dim }, p.classes, { epochs: 20, batch: 16, seed: 3, lr: 0.05 });
    expect(fit.steps).toBe(20 * 4);
    expect(fit.losses).toHaveLength(20);
    expect(fit.losses[19]).toBeLessThan(fit.losses[0]);
    const again = await trainLogReg({ x: p.x, labels: p.labels, dim: p.dim }, p.classes, { epochs: 20, batch: 16, seed: 3, lr: 0.05 });
    expect(Array.from(again.model.W)).toEqual(Array.from(fit.model.W));
  });
});

describe('standardiser', () => {
  it('matches a direct float64 mean and population std; a constant feature gets std 1', () => {
    const n = 37;
    const dim = 5;
    const x = Float32Array.from(randomData(n * dim, 31, -3, 7));
    for (let i = 0; i < n; i++) x[i * dim + 2] = 4.25; // constant column
    const s = fitStandardizer(x, dim);
    for (let j = 0; j < dim; j++) {
      let m = 0;
      for (let i = 0; i < n; i++) m += x[i * dim + j];
      m /= n;
      let v = 0;
      for (let i = 0; i < n; i++) v += (x[i * dim + j] - m) ** 2;
      const sd = Math.sqrt(v / n);
      expect(s.mean[j]).toBeCloseTo(m, 5);
      if (j === 2) expect(s.std[j]).toBe(1);
      else expect(Math.abs(s.std[j] - sd) / sd).toBeLessThan(1e-6);
    }
    const z = standardize(x, dim, s);
    const col0 = Array.from({ length: n }, (_, i) => z[i * dim]);
    expect(Math.abs(col0.reduce((a, v) => a + v, 0) / n)).toBeLessThan(1e-6);
    expect(Array.from({ length: n }, (_, i) => z[i * dim + 2]).every((v) => v === 0)).toBe(true);
  });
});

describe('fitProbe', () => {
  it('linearly separable classes → train and test accuracy 1', async () => {
    const all = blobs(150, 8, 5, 6, 41);
    const split = (lo: number, hi: number) => ({ x: all.x.slice(lo * 8, hi * 8), labels: all.labels.slice(lo, hi), dim: 8 });
    const train = split(0, 100);
    const test = split(100, 150);
    const r = await fitProbe(train, test, ['a', 'b', 'c', 'd', 'e'], { epochs: 100, weightDecays: DEFAULT_WEIGHT_DECAYS });
    expect(r.trainAccuracy).toBe(1);
    expect(r.accuracy).toBe(1);
    expect(r.validation.map((v) => v.weightDecay)).toEqual(DEFAULT_WEIGHT_DECAYS);
  });

  it('random labels → held-out accuracy near chance', async () => {
    const C = 4;
    const mk = (n: number, seed: number) => ({ x: randn(n * 16, seed), labels: randomInts(n, seed + 1, C), dim: 16 });
    const train = mk(200, 51);
    const test = mk(400, 53);
    const r = await fitProbe(train, test, ['a', 'b', 'c', 'd'], { epochs: 100, weightDecays: [0] });
    const sigma = Math.sqrt((0.25 * 0.75) / 400);
    expect(Math.abs(r.accuracy - 1 / C)).toBeLessThan(4.5 * sigma);
    // 16 features can partly memorise 200 random labels: train accuracy above held-out.
    expect(r.trainAccuracy).toBeGreaterThan(r.accuracy);
  });

  it('accuracyOf counts hits', () => {
    expect(accuracyOf(Int32Array.from([0, 1, 2, 2]), Int32Array.from([0, 1, 1, 2]))).toBe(0.75);
  });
});

describe('bad input', () => {
  const ok = () => ({ x: Float32Array.from(randomData(12, 61)), labels: Int32Array.from([0, 1, 0, 1, 0, 1]), dim: 2 });

  it('a label outside [0, classes) is named with its row', async () => {
    const bad = ok();
    bad.labels[4] = 7;
    await expect(fitProbe(bad, ok(), ['a', 'b'], { epochs: 1 })).rejects.toThrow(/training features: label 7 of row 4 is outside \[0, 2\)/);
    await expect(trainLogReg(bad, 2, { epochs: 1 })).rejects.toThrow(ProbeError);
  });

  it('a data set with one class (no labels) is refused', async () => {
    const one = { ...ok(), labels: new Int32Array(6) };
    await expect(fitProbe(one, one, ['images'], { epochs: 1 })).rejects.toThrow(/1 class \('images'\): a probe needs labels/);
  });

  it('too few training images per class names the classes', async () => {
    const t = { x: Float32Array.from(randomData(10, 62)), labels: Int32Array.from([0, 0, 0, 0, 1]), dim: 2 };
    await expect(fitProbe(t, ok(), ['cat', 'dog'], { epochs: 1, weightDecays: [0, 1] })).rejects.toThrow(
      /too few training images per class.*'dog' has 1/,
    );
    await expect(fitProbe(t, ok(), ['cat', 'dog', 'eel'], { epochs: 1 })).rejects.toThrow(/'eel' has 0/);
  });

  it('NaN features are an error naming how many and the first row and column', async () => {
    const t = ok();
    t.x[5] = Number.NaN;
    t.x[9] = Number.POSITIVE_INFINITY;
    await expect(fitProbe(ok(), t, ['a', 'b'], { epochs: 1 })).rejects.toThrow(
      /test features: 2 feature value\(s\) are NaN or ±Inf, the first at row 2, column 1/,
    );
  });

  it('a row count that does not match the labels', async () => {
    const t = { ...ok(), labels: Int32Array.from([0, 1]) };
    await expect(trainLogReg(t, 2, { epochs: 1 })).rejects.toThrow(/6 feature rows but 2 labels/);
  });
});
