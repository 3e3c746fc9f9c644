/** The DiT^DH training step the benchmarks share (train-step report, compiled comparison, suite, dispatch histogram). */
import * as ops from '../src/autograd/ops/index.js';
import { backward } from '../src/autograd/tape.js';
import { flowMatchingBatch } from '../src/diffusion/flow.js';
import { DiTDH } from '../src/models/dit.js';
import { AdamW } from '../src/nn/optim.js';
import { randint, randn } from '../src/tensor/creation.js';
import { scope } from '../src/tensor/scope.js';
import type { Tensor } from '../src/tensor/tensor.js';

/**
 * The demo's DiT^DH training step on fixed data, for this report, bench/compile.ts and the suite's
 * 'ditdh' case: `step` runs it in a scope; `body` is the step itself on given inputs (returning
 * the loss), for compileStep, with the fixed `x` and `y`.
 */
export function makeDitdhStep(): {
  step: () => void;
  body: (x: Tensor, y: Tensor) => Tensor;
  x: Tensor;
  y: Tensor;
  dispose: () => void;
} {
  const B = 16;
  const D = 64;
  const grid = 8;
  const model = DiTDH.fromConfig({
    input_size: grid,
    patch_size: 1,
    in_channels: D,
    hidden_size: [96, 128],
    depth: [2, 1],
    num_heads: [4, 4],
    num_classes: 10,
    use_swiglu: true,
    use_rmsnorm: true,
    use_rope: true,
  });
  const opt = new AdamW(model.trainableParameters(), { lr: 1e-4, betas: [0.9, 0.95], weightDecay: 0 });
  const x = randn([B, D, grid, grid], { seed: 1 }).keep();
  const y = randint(0, 10, [B], { seed: 2 }).keep();
  const body = (xx: Tensor, yy: Tensor): Tensor => {
    const { xt, t, target } = flowMatchingBatch(xx, 1);
    const v = model.forward(xt, t, yy);
    const d = ops.sub(v, target);
    const l = ops.mean(ops.mul(d, d));
    backward(l);
    opt.clipGradNorm(1);
    opt.step();
    opt.zeroGrad();
    return l;
  };
  const step = () => scope(() => void body(x, y));
  const dispose = () => {
    opt.dispose();
    model.dispose();
    x.dispose();
    y.dispose();
  };
  return { step, body, x, y, dispose };
}
