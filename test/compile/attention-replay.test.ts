/**
 * compileStep over a step with attention forward and backward, on both attention paths: the
 * score-matrix path allocates and releases its temporaries inside the recording (like the flash
 * backward's delta), so a replay must reuse the planned storage and give bitwise the same
 * parameters as the eager step (fusion off).
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { backward } from '../../src/autograd/tape.js';
import { runtime } from '../../src/gpu/runtime.js';
import { type AttentionPath, setForcedAttentionPath } from '../../src/kernels/attention.js';
import { mseLoss } from '../../src/nn/functional.js';
import { FusedQKVAttention } from '../../src/nn/layers.js';
import { AdamW } from '../../src/nn/optim.js';
import { compileStep } from '../../src/tensor/compile.js';
import { manualSeed, tensor, toArray } from '../../src/tensor/creation.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { randn as hostRandn } from '../helpers/random.js';
import { useGpu } from '../helpers/setup.js';

useGpu();

const [B, N, D, H] = [2, 19, 24, 3];
const STEPS = 4;
const inputs = Array.from({ length: STEPS }, (_, i) => hostRandn(B * N * D, 300 + i));
const target = hostRandn(B * N * D, 399);

function buildModel() {
  manualSeed(77);
  const attn = new FusedQKVAttention(D, H);
  const params = attn.trainableParameters();
  const opt = new AdamW(params, { lr: 1e-2, betas: [0.9, 0.95], weightDecay: 0.01 });
  const y = tensor(target, [B, N, D]).keep();
  const step = (x: Tensor): Tensor => {
    const loss = mseLoss(attn.forward(x), y);
    backward(loss);
    opt.step();
    opt.zeroGrad();
    return loss;
  };
  return { params, step, dispose: () => [attn, y].forEach((m) => m.dispose()) };
}

describe.each(['materialized', 'flash'] as AttentionPath[])('compileStep with attention (%s path)', (path) => {
  const made: ReturnType<typeof buildModel>[] = [];
  afterEach(() => setForcedAttentionPath(null));
  afterAll(() => made.forEach((m) => m.dispose()));

  it('replays bitwise equal to the eager step (fusion off)', async () => {
    setForcedAttentionPath(path);
    const run = async (step: (x: Tensor) => Tensor) => {
      const losses: number[] = [];
      for (let i = 0; i < STEPS; i++) {
        const x = tensor(inputs[i], [B, N, D]);
        const loss = step(x);
        losses.push((await toArray(loss))[0]);
        loss.dispose();
        x.dispose();
      }
      return losses;
    };
    const eager = buildModel();
    made.push(eager);
    // The path really taken: the score-matrix path allocates its 'attention-scores' temporaries.
    const rt = runtime();
    const labels = new Set<string | undefined>();
    const original = rt.allocate.bind(rt);
    rt.allocate = (bytes: number, label?: string) => {
      labels.add(label);
      return original(bytes, label);
    };
    let eagerLosses: number[];
    try {
      eagerLosses = await run(eager.step);
    } finally {
      rt.allocate = original;
    }
    expect(labels.has('attention-scores')).toBe(path === 'materialized');
    const comp = buildModel();
    made.push(comp);
    const step = compileStep(comp.step, { name: `attention step (${path})` });
    const losses = await run(step);
    expect(step.mode).toBe('replay');
    expect(losses).toEqual(eagerLosses);
    for (const [i, p] of comp.params.entries()) {
      const [a, b] = await Promise.all([toArray(p), toArray(eager.params[i])]);
      expect(new Uint32Array(a.buffer), `parameter ${i}`).toEqual(new Uint32Array(b.buffer));
    }
    step.dispose();
  });
});
