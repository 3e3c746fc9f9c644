/**
 * compileStep: a recorded and replayed training step computes bitwise what the eager step does.
 * The step is a small flow-matching update (as stage 2): noise and times drawn from the global
 * generator inside the step, dropout, an MLP with LayerNorm, MSE, backward, global-norm clipping,
 * AdamW with a learning rate that changes every step, EMA. Both runs start from the same
 * initialisation and generator state and see the same inputs; after N steps every parameter,
 * moment, EMA weight, the step count and the generator's position must be identical bit for bit.
 */
import { afterAll, describe, expect, it } from 'vitest';
import * as ops from '../../src/autograd/ops/index.js';
import { backward } from '../../src/autograd/tape.js';
import { dropout, mseLoss } from '../../src/nn/functional.js';
import { LayerNorm, Linear, Mlp } from '../../src/nn/layers.js';
import { AdamW, EMA } from '../../src/nn/optim.js';
import { compileStep } from '../../src/tensor/compile.js';
import { getGeneratorState, manualSeed, rand, randn, tensor, toArray } from '../../src/tensor/creation.js';
import { memoryStats } from '../../src/tensor/scope.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { randn as hostRandn } from '../helpers/random.js';
import { useGpu } from '../helpers/setup.js';
import { relByMax } from '../helpers/compare.js';

useGpu();

const B = 6;
const D = 8;
const STEPS = 6;

function buildModel() {
  manualSeed(1234);
  const norm = new LayerNorm(D);
  const mlp = new Mlp(D, 16, 'gelu_tanh');
  const head = new Linear(D, D);
  const params = [...norm.trainableParameters(), ...mlp.trainableParameters(), ...head.trainableParameters()];
  const opt = new AdamW(params, { lr: 1e-2, betas: [0.9, 0.95], weightDecay: 0.01 });
  const ema = new EMA(params, 0.9);
  const step = (x: Tensor): Tensor => {
    const noise = randn(x.shape);
    const t = rand([B, 1]);
    const xt = ops.add(ops.mul(ops.sub(1, t), x), ops.mul(t, noise));
    const h = dropout(mlp.forward(norm.forward(xt)), 0.25, true);
    const loss = mseLoss(head.forward(h), ops.sub(noise, x));
    backward(loss);
    opt.clipGradNorm(0.5);
    opt.step();
    opt.zeroGrad();
    ema.update();
    return loss;
  };
  return { params, opt, ema, step, dispose: () => [norm, mlp, head].forEach((m) => m.dispose()) };
}

type Model = ReturnType<typeof buildModel>;

async function snapshot(m: Model): Promise<Uint32Array[]> {
  const ts: Tensor[] = [...m.params, ...m.ema.shadow];
  for (const { m: mm, v } of m.opt.moments().values()) ts.push(mm, v);
  return Promise.all(ts.map(async (t) => new Uint32Array((await toArray(t)).buffer)));
}

const inputs = Array.from({ length: STEPS }, (_, i) => hostRandn(B * D, 100 + i));
const lrAt = (i: number) => 1e-2 * (1 - i / (2 * STEPS));

describe('compileStep', () => {
  const made: Model[] = [];
  afterAll(() => made.forEach((m) => m.dispose()));

  it('replays a flow-matching AdamW step bitwise equal to the eager step (fusion off)', async () => {
    const eager = buildModel();
    made.push(eager);
    const eagerLosses: number[] = [];
    for (let i = 0; i < STEPS; i++) {
      const x = tensor(inputs[i], [B, D]);
      eager.opt.lr = lrAt(i);
      const loss = eager.step(x);
      eagerLosses.push((await toArray(loss))[0]);
      loss.dispose();
      x.dispose();
    }
    const eagerState = await snapshot(eager);
    const eagerGen = getGeneratorState();

    const comp = buildModel();
    made.push(comp);
    const step = compileStep(comp.step, { name: 'test step' });
    const losses: number[] = [];
    const modes: string[] = [];
    for (let i = 0; i < STEPS; i++) {
      const x = tensor(inputs[i], [B, D]);
      comp.opt.lr = lrAt(i);
      const loss = step(x);
      modes.push(step.mode);
      losses.push((await toArray(loss))[0]);
      loss.dispose();
      x.dispose();
    }
    expect(modes).toEqual(['eager', 'replay', 'replay', 'replay', 'replay', 'replay']);
    const state = await snapshot(comp);
    expect(comp.opt.stepCount).toBe(eager.opt.stepCount);
    expect(getGeneratorState()).toEqual(eagerGen);
    expect(losses).toEqual(eagerLosses);
    expect(state.length).toBe(eagerState.length);
    state.forEach((s, i) => expect(s, `tensor ${i}`).toEqual(eagerState[i]));
    // The plan shares storage among intermediates and reports it.
    const st = step.stats()!;
    expect(st.dispatches).toBeGreaterThan(20);
    expect(st.plannedBytes).toBeLessThan(st.unplannedBytes);
    expect(memoryStats().compiledPlannedBytes).toBeGreaterThanOrEqual(st.plannedBytes);
    step.dispose();
    expect(memoryStats().compiledPlannedBytes).toBe(0);
  });

  it('with fusion, replays with fewer dispatches and parameters within 1e-5 (relative to max) of the eager step', async () => {
    const run = async (fusion: boolean | null) => {
      const m = buildModel();
      made.push(m);
      const step = fusion === null ? null : compileStep(m.step, { fusion });
      for (let i = 0; i < STEPS; i++) {
        const x = tensor(inputs[i], [B, D]);
        m.opt.lr = lrAt(i);
        (step ? step(x) : m.step(x)).dispose();
        x.dispose();
      }
      const ts: Tensor[] = [...m.params, ...m.ema.shadow];
      const host = await Promise.all(ts.map(async (t) => (await toArray(t)) as Float32Array));
      const dispatches = step?.stats()?.dispatches ?? 0;
      step?.dispose();
      return { host, dispatches };
    };
    const eager = await run(null);
    const plain = await run(false);
    const fused = await run(true);
    expect(fused.dispatches).toBeLessThan(plain.dispatches);
    const worst = Math.max(...fused.host.map((f, k) => relByMax(f, eager.host[k])));
    console.log(`fusion: ${plain.dispatches} → ${fused.dispatches} dispatches; worst relative-by-max difference ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(1e-5);
  });

  it('refuses an input of another shape, uploads inside the step, and replays after a used buffer is released', async () => {
    const m = buildModel();
    made.push(m);
    const step = compileStep(m.step, { name: 'shape step' });
    for (let i = 0; i < 2; i++) {
      const x = tensor(inputs[i], [B, D]);
      step(x).dispose();
      x.dispose();
    }
    const wrong = tensor(new Float32Array(2 * D), [2, D]);
    expect(() => step(wrong)).toThrow(/shape step: input 0 is f32 \[2, 8\] but the step was recorded with f32 \[6, 8\]/);
    wrong.dispose();

    const uploads = compileStep((x: Tensor) => ops.mul(x, tensor([2])), { warmup: 0 });
    const x = tensor(inputs[0], [B, D]);
    expect(() => uploads(x)).toThrow(/host data .* was uploaded inside the step/);

    // Releasing a parameter the program binds makes it refuse to replay.
    m.ema.dispose();
    expect(() => step(x)).toThrow(/cannot replay: a buffer the compiled step uses was released/);
    x.dispose();
    step.dispose();
    uploads.dispose();
  });
});
