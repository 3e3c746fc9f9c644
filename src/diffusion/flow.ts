/**
 * Flow matching as RAE uses it (spec §4): x_t = (1 − t)·x + t·ε with t = 1 noise, velocity
 * target ε − x, time shifted by α = √(m / 4096), and the reference's Euler sampler grid.
 */
import * as ops from '../autograd/ops/index.js';
import { noGrad } from '../autograd/tape.js';
import { runtime } from '../gpu/runtime.js';
import { full, randn, tensor, uniform } from '../tensor/creation.js';
import type { Tensor } from '../tensor/tensor.js';

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
  const num = ops.mul(tn, alpha);
  const den0 = ops.mul(tn, alpha - 1);
  const den = ops.add(den0, 1);
  const t = ops.div(num, den);
  for (const x of [num, den0, den]) x.dispose();
  return t;
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
 * Euler integration x ← x + (t_next − t)·v(x, t) over the grid, from noise at grid[0]. Async so
 * that it can yield to the GPU runtime between steps (a long loop must, see yieldIfBusy).
 */
export async function eulerSample(velocity: VelocityFn, noise: Tensor, grid: number[], opts: SampleOptions = {}): Promise<Tensor> {
  return noGrad(async () => {
    const B = noise.shape[0];
    let x = ops.mul(noise, 1);
    for (let i = 0; i < grid.length - 1; i++) {
      const t = full([B], grid[i]);
      const v = velocity(x, t);
      const dx = ops.mul(v, grid[i + 1] - grid[i]);
      const nx = ops.add(x, dx);
      for (const u of [t, v, dx, x]) u.dispose();
      x = nx;
      opts.onStep?.(i + 1, grid.length - 1);
      await runtime().yieldIfBusy();
    }
    return x;
  });
}

export interface GuidanceOptions {
  scale: number;
  /** Guidance applies only for t in [tMin, tMax] (Kynkäänniemi interval); default all t. */
  interval?: [number, number];
}

/**
 * Classifier-free guidance: v = v_u + s·(v_c − v_u), with v_u from the null class.
 * `forward(x, t, y, dropMask)` is the model's forward; the conditional and unconditional passes
 * run as one doubled batch.
 */
export function cfgVelocity(
  forward: (x: Tensor, t: Tensor, y: Tensor, dropMask: Tensor) => Tensor,
  y: Tensor,
  g: GuidanceOptions,
): VelocityFn {
  return (x, t) =>
    noGrad(() => {
      const B = x.shape[0];
      const tt = t;
      const x2 = ops.cat([x, x], 0);
      const t2 = ops.cat([tt, tt], 0);
      const y2 = ops.cat([y, y], 0);
      const mask = tensor(Float32Array.from({ length: 2 * B }, (_, i) => (i < B ? 0 : 1)), [2 * B]);
      const v2 = forward(x2, t2, y2, mask);
      const vc = ops.narrow(v2, 0, 0, B);
      const vu = ops.narrow(v2, 0, B, B);
      const diff = ops.sub(vc, vu);
      const sc = guidanceScaleTensor(t, g);
      const scaled = ops.mul(diff, sc);
      const v = ops.add(vu, scaled);
      for (const u of [x2, t2, y2, mask, v2, vc, vu, diff, sc, scaled]) u.dispose();
      return v;
    });
}

/** AutoGuidance: v = v_weak + s·(v_main − v_weak), same labels for both models. */
export function autoGuidanceVelocity(main: VelocityFn, weak: VelocityFn, g: GuidanceOptions): VelocityFn {
  return (x, t) =>
    noGrad(() => {
      const vm = main(x, t);
      const vw = weak(x, t);
      const diff = ops.sub(vm, vw);
      const sc = guidanceScaleTensor(t, g);
      const scaled = ops.mul(diff, sc);
      const v = ops.add(vw, scaled);
      for (const u of [vm, vw, diff, sc, scaled]) u.dispose();
      return v;
    });
}

/** Per-sample scale [B, 1, 1, 1]: s inside the interval, 1 (no guidance) outside. */
function guidanceScaleTensor(t: Tensor, g: GuidanceOptions): Tensor {
  const [lo, hi] = g.interval ?? [-Infinity, Infinity];
  const inLo = ops.compare('ge', t, Math.max(lo, -3e38));
  const inHi = ops.compare('le', t, Math.min(hi, 3e38));
  const inside = ops.mul(inLo, inHi);
  const s = ops.where(inside, g.scale, 1);
  const r = ops.reshape(s, [t.shape[0], 1, 1, 1]);
  for (const u of [inLo, inHi, inside, s]) u.dispose();
  return r;
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
export function flowMatchingBatch(x: Tensor, alpha: number, opts: { timeDist?: 'uniform' | 'logit-normal'; seed?: number } = {}): FlowBatch {
  return noGrad(() => {
    const B = x.shape[0];
    let tn: Tensor;
    if ((opts.timeDist ?? 'uniform') === 'uniform') tn = uniform([B], 0, 0.999, opts.seed === undefined ? {} : { seed: opts.seed });
    else {
      // Logit-normal(0, 1) truncated to t ≤ 0.999: sigmoid of a normal, clamped.
      const z = randn([B], opts.seed === undefined ? {} : { seed: opts.seed });
      const s = ops.unary('sigmoid', z);
      tn = ops.clamp(s, 0, 0.999);
      z.dispose();
      s.dispose();
    }
    const t = shiftTimes(tn, alpha);
    tn.dispose();
    const eps = randn(x.shape, opts.seed === undefined ? {} : { seed: opts.seed + 1 });
    const tb = ops.reshape(t, [B, ...x.shape.slice(1).map(() => 1)]);
    const one = ops.sub(1, tb);
    const a = ops.mul(x, one);
    const b = ops.mul(eps, tb);
    const xt = ops.add(a, b);
    const target = ops.sub(eps, x);
    for (const u of [eps, tb, one, a, b]) u.dispose();
    return { xt, t, target };
  });
}
