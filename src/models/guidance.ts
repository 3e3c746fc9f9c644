/**
 * Guidance as a model-level operation: the reference puts classifier-free guidance on the model
 * (`forward_with_cfg`), so the arithmetic lives here, below src/diffusion, which builds its
 * sampler-facing velocity functions (cfgVelocity, autoGuidanceVelocity) on top of it.
 */
import * as ops from '../autograd/ops/index.js';
import { noGrad } from '../autograd/tape.js';
import { tensor } from '../tensor/creation.js';
import { scope } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';

export interface GuidanceOptions {
  scale: number;
  /** Guidance applies only for t in [tMin, tMax] (Kynkäänniemi interval); default all t. */
  interval?: [number, number];
}

/** A model's forward with a per-sample null-class mask (1 = use the null class). */
export type MaskedForward = (x: Tensor, t: Tensor, y: Tensor, dropMask: Tensor) => Tensor;

/** v = base + s·(guide − base), with s = 1 (plain `guide`) for samples whose t is outside the interval. */
export function guide(guideV: Tensor, baseV: Tensor, t: Tensor, g: GuidanceOptions): Tensor {
  return scope(() => ops.add(baseV, ops.mul(ops.sub(guideV, baseV), guidanceScale(t, g))));
}

/**
 * Classifier-free guidance v = v_u + s·(v_c − v_u), v_u from the null class. The conditional
 * and unconditional passes run as one doubled batch; no gradients, and nothing but v survives.
 */
export function classifierFreeGuidance(forward: MaskedForward, x: Tensor, t: Tensor, y: Tensor, g: GuidanceOptions): Tensor {
  return noGrad(() =>
    scope(() => {
      const B = x.shape[0];
      const mask = tensor(
        Float32Array.from({ length: 2 * B }, (_, i) => (i < B ? 0 : 1)),
        [2 * B],
      );
      const v2 = forward(ops.cat([x, x], 0), ops.cat([t, t], 0), ops.cat([y, y], 0), mask);
      return guide(ops.narrow(v2, 0, 0, B), ops.narrow(v2, 0, B, B), t, g);
    }),
  );
}

/** Per-sample scale [B, 1, 1, 1]: s inside the interval, 1 (no guidance) outside. */
function guidanceScale(t: Tensor, g: GuidanceOptions): Tensor {
  const [lo, hi] = g.interval ?? [-Infinity, Infinity];
  // ±3e38: finite stand-ins for ±∞ that an f32 uniform can carry.
  const inside = ops.mul(ops.compare('ge', t, Math.max(lo, -3e38)), ops.compare('le', t, Math.min(hi, 3e38)));
  return ops.reshape(ops.where(inside, g.scale, 1), [t.shape[0], 1, 1, 1]);
}
