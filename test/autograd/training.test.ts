/**
 * End-to-end training through the public API against the same training done entirely in
 * float64 on the CPU:
 *  (a) a 2-layer MLP 7 → 13 → 3 (exact GELU, cross entropy over 9 samples), 5 AdamW steps; the
 *      float64 side is a hand-written forward, analytic backward and AdamW with plain loops;
 *  (b) a tiny pre-LN transformer block on x [2, 5, 8], 3 AdamW steps; the float64 side takes
 *      its gradients by central differences of a float64 forward and runs the same AdamW;
 *  (c) memory: steps inside scope() return liveTensors / liveBuffers / liveBytes exactly to the
 *      parameters + optimizer state; without zeroGrad exactly the gradients remain.
 * Tolerance: relative-by-max error (max |gpu − cpu| / max |cpu|) < 1e-4 for every parameter
 * after every step and for every loss value. AdamW normalises gradients, so gradients whose
 * true value is 0 (where only rounding noise decides the sign of the update) are avoided by
 * construction: the key projection has no bias (a key bias cannot change the softmax), and the
 * float64 gradients are checked to be well away from 0 before the comparison is trusted.
 */
import { describe, expect, it } from 'vitest';
import * as C from '../../src/cpu/index.js';
import { AdamW64 } from '../../src/cpu/optim.js';
import { F, memoryStats, optim, scope, tensor, toArray, type Tensor } from '../../src/index.js';
import { relByMax } from '../helpers/golden.js';
import { sizeOf, useGpu, settleGarbage } from '../helpers/setup.js';
import { randomData } from '../helpers/random.js';

useGpu();

const TOL = 1e-4;
const LR = 1e-2;
const BETAS: [number, number] = [0.9, 0.95];
const WD = 0.01;
const EPS = 1e-8;

/** Float64 data that is exactly representable in f32, so both sides start from the same values. */
const f32data = (n: number, seed: number, lo = -1, hi = 1) => Float64Array.from(Float32Array.from(randomData(n, seed, lo, hi)));

const param = (data: Float64Array, shape: number[]): Tensor => tensor(Float32Array.from(data), shape, { requiresGrad: true });

const minAbs = (gs: Float64Array[]) => Math.min(...gs.map((g) => g.reduce((a, v) => Math.min(a, Math.abs(v)), Infinity)));

// ------------------------------------------------------------------------------------------
// (a) MLP 7 → 13 → 3

const N = 9;
const IN = 7;
const HID = 13;
const OUT = 3;
const mlpX = f32data(N * IN, 101, -2, 2);
const mlpLabels = [0, 2, 1, 1, 0, 2, 2, 1, 0];
const mlpShapes: number[][] = [[HID, IN], [HID], [OUT, HID], [OUT]];
const mlpInit = () => [
  f32data(HID * IN, 102, -0.6, 0.6),
  f32data(HID, 103, -0.3, 0.3),
  f32data(OUT * HID, 104, -0.5, 0.5),
  f32data(OUT, 105, -0.3, 0.3),
];

const SQRT1_2PI = 1 / Math.sqrt(2 * Math.PI);
const gelu64 = (z: number) => 0.5 * z * (1 + C.erf(z / Math.SQRT2));
const geluGrad64 = (z: number) => 0.5 * (1 + C.erf(z / Math.SQRT2)) + z * SQRT1_2PI * Math.exp(-0.5 * z * z);

/** Float64 forward and analytic backward of the MLP with mean cross entropy. */
function mlpLossAndGrads([W1, b1, W2, b2]: Float64Array[]): { loss: number; grads: Float64Array[] } {
  const z1 = new Float64Array(N * HID);
  const h = new Float64Array(N * HID);
  const z2 = new Float64Array(N * OUT);
  for (let n = 0; n < N; n++) {
    for (let j = 0; j < HID; j++) {
      let s = b1[j];
      for (let i = 0; i < IN; i++) s += mlpX[n * IN + i] * W1[j * IN + i];
      z1[n * HID + j] = s;
      h[n * HID + j] = gelu64(s);
    }
    for (let c = 0; c < OUT; c++) {
      let s = b2[c];
      for (let j = 0; j < HID; j++) s += h[n * HID + j] * W2[c * HID + j];
      z2[n * OUT + c] = s;
    }
  }
  // Cross entropy: loss = mean_n(lse_n − z2[n, y_n]); dz2 = (softmax − onehot) / N.
  let loss = 0;
  const dz2 = new Float64Array(N * OUT);
  for (let n = 0; n < N; n++) {
    let mx = -Infinity;
    for (let c = 0; c < OUT; c++) mx = Math.max(mx, z2[n * OUT + c]);
    let se = 0;
    for (let c = 0; c < OUT; c++) se += Math.exp(z2[n * OUT + c] - mx);
    const lse = mx + Math.log(se);
    loss += lse - z2[n * OUT + mlpLabels[n]];
    for (let c = 0; c < OUT; c++) dz2[n * OUT + c] = (Math.exp(z2[n * OUT + c] - lse) - (c === mlpLabels[n] ? 1 : 0)) / N;
  }
  loss /= N;
  const dW2 = new Float64Array(OUT * HID);
  const db2 = new Float64Array(OUT);
  const dW1 = new Float64Array(HID * IN);
  const db1 = new Float64Array(HID);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < OUT; c++) {
      const g = dz2[n * OUT + c];
      db2[c] += g;
      for (let j = 0; j < HID; j++) dW2[c * HID + j] += g * h[n * HID + j];
    }
    for (let j = 0; j < HID; j++) {
      let dh = 0;
      for (let c = 0; c < OUT; c++) dh += dz2[n * OUT + c] * W2[c * HID + j];
      const dz1 = dh * geluGrad64(z1[n * HID + j]);
      db1[j] += dz1;
      for (let i = 0; i < IN; i++) dW1[j * IN + i] += dz1 * mlpX[n * IN + i];
    }
  }
  return { loss, grads: [dW1, db1, dW2, db2] };
}

/** GPU MLP loss; params are [W1, b1, W2, b2], the input tensor is created by the caller. */
function mlpLossGpu(x: Tensor, [W1, b1, W2, b2]: Tensor[]): Tensor {
  const h = F.gelu(F.linear(x, W1, b1));
  return F.crossEntropy(F.linear(h, W2, b2), mlpLabels);
}

// ------------------------------------------------------------------------------------------
// (b) pre-LN transformer block on x [2, 5, 8]

const TB = [2, 5, 8];
const D = 8;
const FF = 16;
const tbX = f32data(sizeOf(TB), 201, -1.5, 1.5);
const tbNames = ['ln1.w', 'ln1.b', 'q.w', 'q.b', 'k.w', 'v.w', 'v.b', 'ln2.w', 'ln2.b', 'fc1.w', 'fc1.b', 'fc2.w', 'fc2.b'];
const tbShapes: number[][] = [[D], [D], [D, D], [D], [D, D], [D, D], [D], [D], [D], [FF, D], [FF], [D, FF], [D]];
const tbInit = () =>
  tbShapes.map((s, k) => {
    const n = sizeOf(s);
    const name = tbNames[k];
    if (name.endsWith('ln1.w') || name.endsWith('ln2.w')) return f32data(n, 300 + k, 0.7, 1.3);
    if (name.startsWith('ln')) return f32data(n, 300 + k, -0.2, 0.2);
    if (name.endsWith('.b')) return f32data(n, 300 + k, -0.2, 0.2);
    return f32data(n, 300 + k, -1 / Math.sqrt(s[1]), 1 / Math.sqrt(s[1]));
  });

/** Float64 forward of the block; returns the loss mean(out²). */
function tbLoss64(ps: Float64Array[]): number {
  const P = ps.map((p, k) => ({ data: p, shape: tbShapes[k] }));
  const [ln1w, ln1b, qw, qb, kw, vw, vb, ln2w, ln2b, f1w, f1b, f2w, f2b] = P;
  const x: C.NDArray = { data: tbX, shape: TB };
  const a = C.layerNorm(x, [D], ln1w, ln1b, 1e-5);
  const att = C.scaledDotProductAttention(C.linear(a, qw, qb), C.linear(a, kw), C.linear(a, vw, vb));
  const x1 = C.add(x, att);
  const m = C.linear(C.gelu(C.linear(C.layerNorm(x1, [D], ln2w, ln2b, 1e-5), f1w, f1b)), f2w, f2b);
  const out = C.add(x1, m);
  let s = 0;
  for (const v of out.data) s += v * v;
  return s / out.data.length;
}

function tbLossGpu(x: Tensor, ps: Tensor[]): Tensor {
  const [ln1w, ln1b, qw, qb, kw, vw, vb, ln2w, ln2b, f1w, f1b, f2w, f2b] = ps;
  const [B, Nt] = TB;
  const a = F.layerNorm(x, [D], ln1w, ln1b, 1e-5);
  const heads = (t: Tensor) => t.reshape([B, 1, Nt, D]);
  const att = F.scaledDotProductAttention(heads(F.linear(a, qw, qb)), heads(F.linear(a, kw)), heads(F.linear(a, vw, vb))).reshape(TB);
  const x1 = x.add(att);
  const m = F.linear(F.gelu(F.linear(F.layerNorm(x1, [D], ln2w, ln2b, 1e-5), f1w, f1b)), f2w, f2b);
  const out = x1.add(m);
  return out.mul(out).mean();
}

function numericalGrads(loss: (ps: Float64Array[]) => number, ps: Float64Array[]): Float64Array[] {
  return ps.map(
    (p, k) => C.numericalGradient((probe) => loss(ps.map((q, j) => (j === k ? probe.data : q))), { data: p, shape: [p.length] }, 1e-6).data,
  );
}

// ------------------------------------------------------------------------------------------

/**
 * Runs `steps` AdamW steps on the GPU and the same in float64; after every step compares each
 * parameter and the step's loss (rel-by-max). Returns the worst errors for the message.
 */
async function trainAndCompare(
  name: string,
  shapes: number[][],
  init: Float64Array[],
  xData: Float64Array,
  xShape: number[],
  gpuLoss: (x: Tensor, ps: Tensor[]) => Tensor,
  cpuLossAndGrads: (ps: Float64Array[]) => { loss: number; grads: Float64Array[] },
  steps: number,
  names: string[],
): Promise<void> {
  const ps = init.map((d, k) => param(d, shapes[k]));
  const x = tensor(Float32Array.from(xData), xShape);
  const opt = new optim.AdamW(ps, { lr: LR, betas: BETAS, eps: EPS, weightDecay: WD });
  const ref = init.map((d) => Float64Array.from(d));
  const opt64 = new AdamW64(ref, { lr: LR, betas: BETAS, eps: EPS, weightDecay: WD });
  try {
    for (let s = 1; s <= steps; s++) {
      const lossT = scope(() => {
        const loss = gpuLoss(x, ps);
        loss.backward();
        opt.step();
        opt.zeroGrad();
        return loss;
      });
      const lossGpu = (await toArray(lossT))[0];
      lossT.dispose();
      const { loss: lossCpu, grads } = cpuLossAndGrads(ref);
      // A gradient at rounding-noise level would make the sign of Adam's first update arbitrary.
      expect(minAbs(grads), `${name} step ${s}: smallest |float64 gradient|`).toBeGreaterThan(1e-6);
      opt64.step(grads);
      const lossErr = relByMax([lossGpu], [lossCpu]);
      expect(lossErr, `${name} step ${s}: loss ${lossGpu} vs float64 ${lossCpu}`).toBeLessThan(TOL);
      for (let k = 0; k < ps.length; k++) {
        const got = await toArray(ps[k]);
        const err = relByMax(got, ref[k]);
        expect(err, `${name} step ${s}: parameter ${names[k]} ${JSON.stringify(shapes[k])} rel-by-max error`).toBeLessThan(TOL);
      }
    }
  } finally {
    opt.dispose();
    for (const p of ps) p.dispose();
    x.dispose();
  }
}

describe('training vs float64', () => {
  it('(a) MLP 7 → 13 → 3 (GELU, cross entropy, 9 samples): 5 AdamW steps match a float64 forward/backward/AdamW', async () => {
    // The analytic float64 backward agrees with central differences of its own forward.
    const p0 = mlpInit();
    const analytic = mlpLossAndGrads(p0).grads;
    const numeric = numericalGrads((ps) => mlpLossAndGrads(ps).loss, p0);
    analytic.forEach((g, k) => expect(relByMax(g, numeric[k]), `analytic vs numerical gradient ${k}`).toBeLessThan(1e-7));
    await trainAndCompare('MLP', mlpShapes, p0, mlpX, [N, IN], mlpLossGpu, mlpLossAndGrads, 5, ['W1', 'b1', 'W2', 'b2']);
  });

  it('(b) pre-LN transformer block on [2, 5, 8]: 3 AdamW steps match float64 (central-difference gradients)', async () => {
    const cpu = (ps: Float64Array[]) => ({ loss: tbLoss64(ps), grads: numericalGrads(tbLoss64, ps) });
    await trainAndCompare('block', tbShapes, tbInit(), tbX, TB, tbLossGpu, cpu, 3, tbNames);
  });
});

describe('training memory', () => {
  it('(c) steps inside scope() return live tensors/buffers/bytes exactly to params + optimizer state', async () => {
    const ps = mlpInit().map((d, k) => param(d, mlpShapes[k]));
    const x = tensor(Float32Array.from(mlpX), [N, IN]);
    const opt = new optim.AdamW(ps, { lr: LR, betas: BETAS, eps: EPS, weightDecay: WD });
    const step = () => {
      const loss = mlpLossGpu(x, ps);
      loss.backward();
      opt.step();
      opt.zeroGrad();
    };
    try {
      scope(step); // creates the optimizer state (m, v per parameter)
      expect(opt.stateSize()).toBe(2 * ps.reduce((n, p) => n + p.size, 0));
      await settleGarbage();
      const base = memoryStats();
      for (let s = 0; s < 5; s++) {
        scope(step);
        const now = memoryStats();
        expect({ liveTensors: now.liveTensors, liveBuffers: now.liveBuffers, liveBytes: now.liveBytes }, `after step ${s + 2}`).toEqual({
          liveTensors: base.liveTensors,
          liveBuffers: base.liveBuffers,
          liveBytes: base.liveBytes,
        });
      }
      // forward + backward without zeroGrad: exactly one gradient tensor per parameter remains.
      scope(() => {
        mlpLossGpu(x, ps).backward();
      });
      const withGrads = memoryStats();
      expect(ps.every((p) => p.grad !== null)).toBe(true);
      expect(withGrads.liveTensors).toBe(base.liveTensors + ps.length);
      expect(withGrads.liveBuffers).toBe(base.liveBuffers + ps.length);
      expect(withGrads.liveBytes).toBeGreaterThanOrEqual(base.liveBytes + 4 * ps.reduce((n, p) => n + p.size, 0));
      opt.zeroGrad();
      const after = memoryStats();
      expect([after.liveTensors, after.liveBuffers, after.liveBytes]).toEqual([base.liveTensors, base.liveBuffers, base.liveBytes]);
    } finally {
      opt.dispose();
      for (const p of ps) p.dispose();
      x.dispose();
    }
  });
});
