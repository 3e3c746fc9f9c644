/**
 * One training step of the demo's models, timed end to end and broken down per kernel with
 * timestamp queries (GPU time) — where a step's time goes.
 *
 * Run: npm run bench -- train-step
 */
import { runtime } from '../src/gpu/runtime.js';
import { benchCompiledTrainStep } from './compile.js';
import { makeDitdhStep } from './ditdh-step.js';

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
