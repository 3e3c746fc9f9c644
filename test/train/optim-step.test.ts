/**
 * The optimizer classes (SGD, AdamW), global-norm clipping and EMA over several steps of a real
 * loop — loss → backward → clipGradNorm → step → zeroGrad → ema.update — against the same loop
 * in float64 (src/cpu/optim.ts). The loss is F.mseLoss(p₁, c₁) + F.mseLoss(p₂, c₂), so each
 * step's gradient 2(p − c)/N depends on the previous update and an error anywhere in the chain
 * (clip scale not applied, applied twice, momentum or bias correction wrong) carries forward.
 * maxNorm is set so that clipping is active in the first steps and inactive later.
 *
 * Tolerance: relative-by-max error < 2e-6 for every parameter, EMA shadow and pre-clip norm² after
 * every step (f32 on the GPU against float64; measured ≤ 1.5e-7 on lavapipe).
 */
import { describe, expect, it } from 'vitest';
import { AdamW64, clipGradNorm64, emaUpdate64, SGD64 } from '../../src/cpu/optim.js';
import { backward } from '../../src/autograd/tape.js';
import * as ops from '../../src/autograd/ops/index.js';
import { mseLoss } from '../../src/nn/functional.js';
import { AdamW, EMA, SGD, type Optimizer } from '../../src/nn/optim.js';
import { tensor, toArray } from '../../src/tensor/creation.js';
import { scope } from '../../src/tensor/scope.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { relByMax } from '../helpers/golden.js';
import { randomData } from '../helpers/random.js';
import { useGpu } from '../helpers/setup.js';

useGpu();

const TOL = 2e-6;
const STEPS = 6;
const SHAPES = [[7], [3, 5]];

const f32data = (n: number, seed: number) => Float64Array.from(Float32Array.from(randomData(n, seed)));

interface Case {
  name: string;
  make: (p: Tensor[]) => Optimizer;
  ref: (p: Float64Array[]) => { step(g: Float64Array[]): void };
  clip?: number;
  emaDecay: number;
}

const cases: Case[] = [
  {
    name: 'SGD, Nesterov momentum 0.9, weight decay 0.01, clip 0.5',
    make: (p) => new SGD(p, { lr: 0.3, momentum: 0.9, nesterov: true, weightDecay: 0.01 }),
    ref: (p) => new SGD64(p, { lr: 0.3, momentum: 0.9, nesterov: true, weightDecay: 0.01 }),
    // Pre-clip norms 0.678 … 0.512 | 0.396 … (float64): three steps clipped, three not.
    clip: 0.5,
    emaDecay: 0.8,
  },
  {
    name: 'SGD, momentum 0.5 with dampening 0.1, clip 0.52',
    make: (p) => new SGD(p, { lr: 0.4, momentum: 0.5, dampening: 0.1 }),
    ref: (p) => new SGD64(p, { lr: 0.4, momentum: 0.5, dampening: 0.1 }),
    // Pre-clip norms 0.678 … 0.56 | 0.49 … (float64): three steps clipped, three not.
    clip: 0.52,
    emaDecay: 0.5,
  },
  {
    name: 'plain SGD, no clipping',
    make: (p) => new SGD(p, { lr: 0.7 }),
    ref: (p) => new SGD64(p, { lr: 0.7 }),
    emaDecay: 0.9,
  },
  {
    name: 'AdamW (0.9, 0.95), weight decay 0.05, clip 0.55',
    make: (p) => new AdamW(p, { lr: 0.05, betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0.05 }),
    ref: (p) => new AdamW64(p, { lr: 0.05, betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0.05 }),
    clip: 0.55,
    emaDecay: 0.7,
  },
];

describe('optimizer step → clipGradNorm → next step, against float64', () => {
  for (const c of cases) {
    it(c.name, async () => {
      const init = SHAPES.map((s, k) =>
        f32data(
          s.reduce((a, b) => a * b, 1),
          10 + k,
        ),
      );
      const targets = SHAPES.map((s, k) =>
        f32data(
          s.reduce((a, b) => a * b, 1),
          20 + k,
        ),
      );
      const params = init.map((d, k) => tensor(Float32Array.from(d), SHAPES[k], { requiresGrad: true }).keep());
      const targetT = targets.map((d, k) => tensor(Float32Array.from(d), SHAPES[k]).keep());
      const opt = c.make(params);
      const ema = new EMA(params, c.emaDecay);

      const p64 = init.map((d) => Float64Array.from(d));
      const ema64 = init.map((d) => Float64Array.from(d));
      const opt64 = c.ref(p64);
      let clippedSteps = 0;

      for (let step = 1; step <= STEPS; step++) {
        const sumsq = scope(() => {
          const loss = ops.add(mseLoss(params[0], targetT[0]), mseLoss(params[1], targetT[1]));
          backward(loss);
          const s = c.clip ? opt.clipGradNorm(c.clip) : null;
          opt.step();
          opt.zeroGrad();
          ema.update();
          return s;
        });
        const g64 = p64.map((p, k) => Float64Array.from(p, (v, i) => (2 * (v - targets[k][i])) / p.length));
        if (c.clip) {
          const want = clipGradNorm64(g64, c.clip);
          if (Math.sqrt(want) > c.clip) clippedSteps++;
          const got = (await toArray(sumsq!))[0];
          expect(Math.abs(got - want) / want, `step ${step}: pre-clip norm² ${got} vs ${want}`).toBeLessThan(TOL);
          sumsq!.dispose();
        }
        opt64.step(g64);
        emaUpdate64(ema64, p64, c.emaDecay);
        for (let k = 0; k < params.length; k++) {
          const err = relByMax(await toArray(params[k]), p64[k]);
          expect(err, `step ${step}, param ${k}`).toBeLessThan(TOL);
          const errE = relByMax(await toArray(ema.shadow[k]), ema64[k]);
          expect(errE, `step ${step}, EMA ${k}`).toBeLessThan(TOL);
        }
      }
      // Both regimes were exercised: clipped early, unclipped later (when clipping is on).
      if (c.clip) {
        expect(clippedSteps).toBeGreaterThan(0);
        expect(clippedSteps).toBeLessThan(STEPS);
      }
      // copyTo puts the averaged weights into the parameters.
      ema.copyTo();
      for (let k = 0; k < params.length; k++) expect(relByMax(await toArray(params[k]), ema64[k])).toBeLessThan(TOL);
      opt.dispose();
      ema.dispose();
      for (const t of [...params, ...targetT]) t.dispose();
    });
  }
});
