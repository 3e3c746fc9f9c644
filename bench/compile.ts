/**
 * The DiT^DH training step of bench/train-step.ts, eager against compiled (compileStep: recorded
 * once, replayed), interleaved in one process: step time (submit to GPU idle), host time per step
 * and per dispatch (the JS time of recording the step, without waiting), dispatches per step, and
 * the compiled step's planned memory.
 *
 * Run: npm run bench -- train-step (this follows its eager figures).
 */
import { runtime } from '../src/gpu/runtime.js';
import * as ops from '../src/autograd/ops/index.js';
import { compileStep } from '../src/tensor/compile.js';
import { randn } from '../src/tensor/creation.js';
import type { Tensor } from '../src/tensor/tensor.js';
import { makeDitdhStep } from './ditdh-step.js';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

export async function benchCompiledTrainStep(opts: { rounds?: number; fusion?: boolean } = {}): Promise<string> {
  const rt = runtime();
  // The same step as the eager report and the suite (bench/train-step.ts).
  const { step: eager, body, x, y, dispose } = makeDitdhStep();
  const compiled = compileStep(body, { name: 'DiT^DH step' });
  const fusedStep = compileStep(body, { name: 'DiT^DH step, fused', fusion: true });
  const replay = () => compiled(x, y).dispose();
  const replayFused = () => fusedStep(x, y).dispose();
  for (let i = 0; i < 3; i++) {
    eager();
    replay();
    replayFused();
  }
  await rt.sync();

  const measure = async (fn: () => void, reps: number) => {
    const d0 = rt.counters.dispatches;
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) fn();
    const host = (performance.now() - t0) / reps;
    const dispatches = (rt.counters.dispatches - d0) / reps;
    await rt.sync();
    return { ms: (performance.now() - t0) / reps, host, dispatches };
  };
  const rounds = opts.rounds ?? 5;
  const e: { ms: number; host: number; dispatches: number }[] = [];
  const c: { ms: number; host: number; dispatches: number }[] = [];
  const f: { ms: number; host: number; dispatches: number }[] = [];
  for (let r = 0; r < rounds; r++) {
    e.push(await measure(eager, 3));
    c.push(await measure(replay, 3));
    f.push(await measure(replayFused, 3));
  }
  const st = compiled.stats()!;
  const fst = fusedStep.stats()!;
  const fMs = median(f.map((m) => m.ms));
  const fHost = median(f.map((m) => m.host));
  const eMs = median(e.map((m) => m.ms));
  const cMs = median(c.map((m) => m.ms));
  const eHost = median(e.map((m) => m.host));
  const cHost = median(c.map((m) => m.host));
  const eD = e[0].dispatches;
  const lines = [
    `compiled vs eager, interleaved (${rounds} rounds × 3 steps, medians; ranges in brackets):`,
    `  eager:    ${eMs.toFixed(1)} ms/step [${Math.min(...e.map((m) => m.ms)).toFixed(1)}–${Math.max(...e.map((m) => m.ms)).toFixed(1)}], host ${eHost.toFixed(2)} ms/step = ${((eHost * 1000) / eD).toFixed(1)} µs/dispatch, ${eD} dispatches`,
    `  compiled: ${cMs.toFixed(1)} ms/step [${Math.min(...c.map((m) => m.ms)).toFixed(1)}–${Math.max(...c.map((m) => m.ms)).toFixed(1)}], host ${cHost.toFixed(2)} ms/step = ${((cHost * 1000) / st.dispatches).toFixed(1)} µs/dispatch, ${st.dispatches} dispatches + ${st.copies} copies`,
    `  fused:    ${fMs.toFixed(1)} ms/step [${Math.min(...f.map((m) => m.ms)).toFixed(1)}–${Math.max(...f.map((m) => m.ms)).toFixed(1)}], host ${fHost.toFixed(2)} ms/step = ${((fHost * 1000) / fst.dispatches).toFixed(1)} µs/dispatch, ${fst.dispatches} dispatches (${(100 * (1 - fst.dispatches / eD)).toFixed(0)} % fewer), planned ${mib(fst.plannedBytes)}`,
    `  speed-up ${(eMs / cMs).toFixed(2)}× (compiled), ${(eMs / fMs).toFixed(2)}× (fused) per step; planned intermediates + inputs ${mib(st.plannedBytes)} (one buffer each: ${mib(st.unplannedBytes)}), peak bound ${mib(st.peakBytes)}, ${st.dynamicWords} dynamic uniform words`,
  ];
  compiled.dispose();
  fusedStep.dispose();
  dispose();
  return lines.join('\n');
}

/**
 * The eager bind-group cache, on and off, interleaved: host time to record a 256-element add
 * (the runtime bench's op) and the DiT^DH-sized chain of maps a training step makes.
 */
export async function benchBindGroupCache(ops = 2000, rounds = 5): Promise<string> {
  const rt = runtime();
  const a = randn([256], { seed: 1 });
  const b = randn([256], { seed: 2 });
  const once = () => ops_add(a, b);
  for (let i = 0; i < 50; i++) once();
  await rt.sync();
  const on: number[] = [];
  const off: number[] = [];
  for (let r = 0; r < rounds; r++) {
    for (const enabled of [false, true]) {
      rt.bindGroups.enabled = enabled;
      const t = performance.now();
      for (let i = 0; i < ops; i++) once();
      (enabled ? on : off).push(((performance.now() - t) * 1000) / ops);
      await rt.sync();
    }
  }
  rt.bindGroups.enabled = true;
  a.dispose();
  b.dispose();
  const r = (xs: number[]) => `${median(xs).toFixed(1)} µs/op [${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)}]`;
  return `eager bind-group cache, host time to record a 256-element add (${rounds} interleaved rounds of ${ops}): off ${r(off)}, on ${r(on)}`;
}

function ops_add(a: Tensor, b: Tensor): void {
  ops.add(a, b).dispose();
}
