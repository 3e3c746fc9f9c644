/**
 * One training step of the demo's models, timed end to end and broken down per kernel with
 * timestamp queries (GPU time) — where a step's time goes.
 *
 * Run: npm run bench -- train-step
 */
import * as ops from '../src/autograd/ops/index.js';
import { backward } from '../src/autograd/tape.js';
import { flowMatchingBatch } from '../src/diffusion/flow.js';
import { runtime } from '../src/gpu/runtime.js';
import { DiTDH } from '../src/models/dit.js';
import { AdamW } from '../src/nn/optim.js';
import { randint, randn } from '../src/tensor/creation.js';
import { scope } from '../src/tensor/scope.js';
import { benchCompiledTrainStep } from './compile.js';

/** The demo's DiT^DH training step on fixed data, for this report and the suite's 'ditdh' case. */
export function makeDitdhStep(): { step: () => void; dispose: () => void } {
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
  const step = () =>
    scope(() => {
      const { xt, t, target } = flowMatchingBatch(x, 1);
      const v = model.forward(xt, t, y);
      const d = ops.sub(v, target);
      const l = ops.mean(ops.mul(d, d));
      backward(l);
      opt.clipGradNorm(1);
      opt.step();
      opt.zeroGrad();
    });
  const dispose = () => {
    opt.dispose();
    model.dispose();
    x.dispose();
    y.dispose();
  };
  return { step, dispose };
}

export async function benchTrainStep(): Promise<string> {
  const rt = runtime();
  const { step, dispose } = makeDitdhStep();
  for (let i = 0; i < 3; i++) step();
  await rt.sync();
  const d0 = rt.counters.dispatches;
  const reps = 5;
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) step();
  await rt.sync();
  const ms = (performance.now() - t0) / reps;
  const perStep = (rt.counters.dispatches - d0) / reps;
  const lines = [`DiT^DH (body 96×2, head 128×1) on [16, 64, 8, 8]: ${ms.toFixed(1)} ms/step, ${perStep} dispatches/step`];
  if (rt.profiler) {
    rt.profiler.reset();
    step();
    await rt.sync();
    const rep = await rt.profiler.report();
    const total = rep.reduce((s, r) => s + r.totalMs, 0);
    lines.push(`GPU time in kernels: ${total.toFixed(1)} ms/step; top kernels:`);
    for (const r of rep.slice(0, 15)) lines.push(`  ${r.totalMs.toFixed(2).padStart(8)} ms  ${String(r.calls).padStart(4)}×  ${r.label}`);
  } else lines.push('(per-kernel breakdown: run with RAE_PROFILE=1 on an adapter with timestamp-query)');
  dispose();
  lines.push(await benchCompiledTrainStep());
  return lines.join('\n');
}
