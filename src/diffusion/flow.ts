/**
 * Flow matching as RAE uses it (spec §4): x_t = (1 − t)·x + t·ε with t = 1 noise, velocity
 * target ε − x, time shifted by α = √(m / 4096), and the reference's Euler sampler grid.
 */
import * as ops from '../autograd/ops/index.js';
import { noGrad } from '../autograd/tape.js';
import { classifierFreeGuidance, guide, type GuidanceOptions, type MaskedForward } from '../models/guidance.js';
import { full, randn, uniform } from '../tensor/creation.js';
import { yieldIfBusy } from '../tensor/pace.js';
import { scope } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';

export type { GuidanceOptions, MaskedForward } from '../models/guidance.js';

/** α = √(m / base) with m = tokens × channels of the latent (base 4096, Esser et al.). */
export function shiftAlpha(latentElements: number, base = 4096): number {
  if (!(latentElements > 0) || !(base > 0)) throw new RangeError(`shiftAlpha: need positive sizes, got m=${latentElements}, base=${base}`);
  return Math.sqrt(latentElements / base);
}

/** t = α·tₙ / (1 + (α − 1)·tₙ). */
export function shiftTime(tn: number, alpha: number): number {
  return (alpha * tn) / (1 + (alpha - 1) * tn);
}

/** The same shift applied on the GPU to a tensor of times. */
export function shiftTimes(tn: Tensor, alpha: number): Tensor {
  return scope(() => ops.div(ops.mul(tn, alpha), ops.add(ops.mul(tn, alpha - 1), 1)));
}

/** The sampler's times: shift(1 − linspace(0, 0.999, n)); n points give n − 1 Euler steps. */
export function samplerGrid(n: number, alpha: number, tEnd = 0.999): number[] {
  if (!Number.isInteger(n) || n < 2) throw new RangeError(`samplerGrid: need at least 2 points, got ${n}`);
  return Array.from({ length: n }, (_, i) => shiftTime(1 - (tEnd * i) / (n - 1), alpha));
}

export type VelocityFn = (x: Tensor, t: Tensor) => Tensor;

export interface SampleOptions {
  /** Called after each step with (step, total). */
  onStep?: (step: number, total: number) => void;
}

/**
 * Euler integration x ← x + (t_next − t)·v(x, t) over the grid, from noise at grid[0]. Each step
 * runs in its own scope: only the new x outlives it, whatever the velocity function allocates.
 * Async so that it yields to the GPU runtime between steps (a long loop must: see yieldIfBusy).
 */
export async function eulerSample(velocity: VelocityFn, noise: Tensor, grid: number[], opts: SampleOptions = {}): Promise<Tensor> {
  return noGrad(async () => {
    const B = noise.shape[0];
    let x = noise;
    for (let i = 0; i < grid.length - 1; i++) {
      const next = scope(() => ops.add(x, ops.mul(velocity(x, full([B], grid[i])), grid[i + 1] - grid[i])));
      if (x !== noise) x.dispose();
      x = next;
      opts.onStep?.(i + 1, grid.length - 1);
      await yieldIfBusy();
    }
    // The caller owns `noise`; the result is always a tensor of its own.
    return x === noise ? ops.mul(noise, 1) : x;
  });
}

/**
 * Heun's method (explicit trapezoid, second order) over the same grid: a predictor Euler step to
 * t_next, then x ← x + h·(v(x, t) + v(x̃, t_next))/2. Two velocity evaluations per step.
 */
export async function heunSample(velocity: VelocityFn, noise: Tensor, grid: number[], opts: SampleOptions = {}): Promise<Tensor> {
  return noGrad(async () => {
    const B = noise.shape[0];
    let x = noise;
    for (let i = 0; i < grid.length - 1; i++) {
      const h = grid[i + 1] - grid[i];
      const next = scope(() => {
        const k1 = velocity(x, full([B], grid[i]));
        const predicted = ops.add(x, ops.mul(k1, h));
        const k2 = velocity(predicted, full([B], grid[i + 1]));
        return ops.add(x, ops.mul(ops.add(k1, k2), h / 2));
      });
      if (x !== noise) x.dispose();
      x = next;
      opts.onStep?.(i + 1, grid.length - 1);
      await yieldIfBusy();
    }
    return x === noise ? ops.mul(noise, 1) : x;
  });
}

/**
 * Classifier-free guidance: v = v_u + s·(v_c − v_u), with v_u from the null class.
 * `forward(x, t, y, dropMask)` is the model's forward; the conditional and unconditional passes
 * run as one doubled batch.
 */
export function cfgVelocity(forward: MaskedForward, y: Tensor, g: GuidanceOptions): VelocityFn {
  return (x, t) => classifierFreeGuidance(forward, x, t, y, g);
}

/** AutoGuidance: v = v_weak + s·(v_main − v_weak), same labels for both models. */
export function autoGuidanceVelocity(main: VelocityFn, weak: VelocityFn, g: GuidanceOptions): VelocityFn {
  return (x, t) => noGrad(() => scope(() => guide(main(x, t), weak(x, t), t, g)));
}

export interface FlowBatch {
  xt: Tensor;
  t: Tensor;
  target: Tensor;
}

/**
 * Draws t (uniform or logit-normal on [0, 0.999], then shifted) and ε, and returns
 * (x_t, t, ε − x) for the training loss.
 */
export function flowMatchingBatch(
  x: Tensor,
  alpha: number,
  opts: { timeDist?: 'uniform' | 'logit-normal'; seed?: number } = {},
): FlowBatch {
  return noGrad(() =>
    scope(() => {
      const B = x.shape[0];
      // Times and noise come from two streams of one seed: seeds s and s + 1 must not share draws.
      const seed = (stream: number) => (opts.seed === undefined ? {} : { seed: opts.seed, stream });
      const tn =
        (opts.timeDist ?? 'uniform') === 'uniform'
          ? uniform([B], 0, 0.999, seed(0))
          : // Logit-normal(0, 1) truncated to t ≤ 0.999: sigmoid of a normal, clamped.
            ops.clamp(ops.unary('sigmoid', randn([B], seed(0))), 0, 0.999);
      const t = shiftTimes(tn, alpha);
      const eps = randn(x.shape, seed(1));
      const tb = ops.reshape(t, [B, ...x.shape.slice(1).map(() => 1)]);
      return { xt: ops.add(ops.mul(x, ops.sub(1, tb)), ops.mul(eps, tb)), t, target: ops.sub(eps, x) };
    }),
  );
}
