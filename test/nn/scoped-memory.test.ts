/**
 * Memory with the garbage-collector safety net switched off: every tensor a forward, a backward
 * rule, an optimizer step or a sampler step allocates must be freed by the code itself (module
 * scopes, sampler-step scopes), so memoryStats() returns exactly to its baseline. With the net
 * off a dropped tensor stays counted forever, so a leak fails these tests deterministically.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as ops from '../../src/autograd/ops/index.js';
import { backward, noGrad } from '../../src/autograd/tape.js';
import { autoGuidanceVelocity, eulerSample, samplerGrid, shiftAlpha } from '../../src/diffusion/flow.js';
import { Dinov2WithRegisters } from '../../src/models/dinov2.js';
import { DiTDH, type DiTConfig } from '../../src/models/dit.js';
import { RAEDecoder } from '../../src/models/rae-decoder.js';
import { FusedQKVAttention, GaussianFourierEmbedding, Linear } from '../../src/nn/layers.js';
import { Module } from '../../src/nn/module.js';
import * as F from '../../src/nn/functional.js';
import { AdamW } from '../../src/nn/optim.js';
import { full, rand, randn, tensor, toArray } from '../../src/tensor/creation.js';
import { memoryStats, scope, type MemoryStats } from '../../src/tensor/scope.js';
import { scopeStack, setGcSafetyNet, type Tensor } from '../../src/tensor/tensor.js';
import { useGpu } from '../helpers/setup.js';

useGpu();

let previousNet = true;
beforeAll(() => {
  previousNet = setGcSafetyNet(false);
});
afterAll(() => {
  setGcSafetyNet(previousNet);
});

/** The golden ditdh_small configuration (fixtures/golden/README.md): seconds on lavapipe. */
const config: DiTConfig = {
  input_size: 4,
  patch_size: 1,
  in_channels: 32,
  hidden_size: [64, 96],
  depth: [2, 1],
  num_heads: [4, 4],
  mlp_ratio: 4,
  num_classes: 10,
  class_dropout_prob: 0.1,
  use_swiglu: true,
  use_rmsnorm: true,
  use_rope: true,
  use_qknorm: false,
};

const live = (s: MemoryStats) => ({ liveTensors: s.liveTensors, liveBuffers: s.liveBuffers, liveBytes: s.liveBytes });

describe('the leaks of issue #7 are gone (safety net off)', () => {
  it('GaussianFourierEmbedding.forward frees its inner products', async () => {
    const emb = new GaussianFourierEmbedding(32, 16);
    const t = tensor([0.1, 0.5, 0.9]);
    const before = live(memoryStats());
    const y = noGrad(() => emb.forward(t));
    expect(y.shape).toEqual([3, 32]);
    expect(memoryStats().liveTensors).toBe(before.liveTensors + 1);
    await toArray(y);
    y.dispose();
    expect(live(memoryStats())).toEqual(before);
    t.dispose();
    emb.dispose();
  });

  it('FusedQKVAttention.forward leaves no view of qkv behind (with and without RoPE)', async () => {
    const attn = new FusedQKVAttention(32, 4);
    const x = randn([2, 16, 32], { seed: 1 });
    const rope = { cos: full([16, 8], 0.6), sin: full([16, 8], 0.8) };
    const before = live(memoryStats());
    for (const r of [undefined, rope]) {
      const y = noGrad(() => attn.forward(x, r));
      expect(memoryStats().liveTensors).toBe(before.liveTensors + 1);
      await toArray(y);
      y.dispose();
      expect(live(memoryStats())).toEqual(before);
    }
    for (const u of [x, rope.cos, rope.sin]) u.dispose();
    attn.dispose();
  });

  it('eulerSample frees what each step allocates, step by step', async () => {
    const noise = randn([2, 3, 4, 4], { seed: 2 });
    const grid = samplerGrid(6, 1.5);
    const before = live(memoryStats());
    // A velocity that leaves its temporaries (two products and t) to the enclosing scope.
    const velocity = (x: Tensor, t: Tensor) => ops.mul(ops.mul(x, -1), ops.reshape(t, [2, 1, 1, 1]));
    const perStep: number[] = [];
    const z = await eulerSample(velocity, noise, grid, { onStep: () => perStep.push(memoryStats().liveTensors) });
    // Between steps only the current sample is alive.
    expect(perStep).toEqual(Array(5).fill(before.liveTensors + 1));
    // x ← x + dt·(−t·x) per step, the closed form of this velocity.
    const want = Array.from(await toArray(noise)).map((v) => grid.slice(0, -1).reduce((x, t, i) => x + (grid[i + 1] - t) * -t * x, v));
    const got = await toArray(z);
    got.forEach((v, i) => expect(Math.abs(v - want[i])).toBeLessThan(1e-5 * (1 + Math.abs(want[i]))));
    z.dispose();
    expect(live(memoryStats())).toEqual(before);
    noise.dispose();
  });
});

describe('DiT^DH: training step and guided sampling return to the baseline (safety net off)', () => {
  it('forward + backward + AdamW step (with grad clipping) leave parameters and optimizer state only', async () => {
    const empty = live(memoryStats());
    const model = DiTDH.fromConfig(config);
    const trainable = model.trainableParameters();
    const opt = new AdamW(trainable, { lr: 1e-3, betas: [0.9, 0.95], weightDecay: 0 });
    const x = randn([3, 32, 4, 4], { seed: 3 });
    const y = tensor(Int32Array.from([0, 9, 4]), [3], { dtype: 'i32' });
    // No enclosing scope: the module scopes and the tape alone must free every temporary.
    const step = async () => {
      const t = rand([3], { seed: 4 });
      const v = model.forward(x, t, y);
      const loss = F.mseLoss(v, x);
      backward(loss);
      const normSq = opt.clipGradNorm(1.0);
      opt.step();
      opt.zeroGrad();
      const value = (await toArray(loss))[0];
      for (const u of [t, v, loss, normSq]) u.dispose();
      return value;
    };
    try {
      model.train();
      const withModel = live(memoryStats());
      const first = await step();
      expect(Number.isFinite(first)).toBe(true);
      // The first step adds exactly the optimizer state: m and v per trainable parameter and
      // the clip scale (one f32).
      const oneFloat = tensor([0]);
      const scaleBytes = oneFloat.buffer.size;
      oneFloat.dispose();
      const base = live(memoryStats());
      expect(base).toEqual({
        liveTensors: withModel.liveTensors + 2 * trainable.length + 1,
        liveBuffers: withModel.liveBuffers + 2 * trainable.length + 1,
        liveBytes: withModel.liveBytes + 2 * trainable.reduce((n, p) => n + p.buffer.size, 0) + scaleBytes,
      });
      for (let s = 2; s <= 3; s++) {
        const l = await step();
        expect(Number.isFinite(l)).toBe(true);
        expect(live(memoryStats()), `after step ${s}`).toEqual(base);
      }
    } finally {
      opt.dispose();
      model.dispose();
      x.dispose();
      y.dispose();
    }
    expect(live(memoryStats())).toEqual(empty);
  });

  it('20 CFG Euler steps (forwardWithCfg) and AutoGuidance steps free everything but the sample', async () => {
    const empty = live(memoryStats());
    const model = DiTDH.fromConfig(config).eval();
    const weak = DiTDH.fromConfig(config).eval();
    const labels = tensor(Int32Array.from([1, 7]), [2], { dtype: 'i32' });
    const noise = randn([2, 32, 4, 4], { seed: 5 });
    const grid = samplerGrid(21, shiftAlpha(32 * 4 * 4));
    const base = live(memoryStats());
    const perStep: number[] = [];
    const onStep = () => perStep.push(memoryStats().liveTensors);
    const z = await eulerSample((x, t) => model.forwardWithCfg(x, t, labels, 2.5), noise, grid, { onStep });
    expect(perStep).toEqual(Array(20).fill(base.liveTensors + 1));
    const host = await toArray(z);
    expect(host.every(Number.isFinite)).toBe(true);
    z.dispose();
    expect(live(memoryStats())).toEqual(base);

    const guided = autoGuidanceVelocity(
      (x, t) => model.forward(x, t, labels),
      (x, t) => weak.forward(x, t, labels),
      { scale: 1.5, interval: [0.2, 0.9] },
    );
    const z2 = await eulerSample(guided, noise, samplerGrid(6, 1), {});
    await toArray(z2);
    z2.dispose();
    expect(live(memoryStats())).toEqual(base);

    for (const u of [labels, noise]) u.dispose();
    model.dispose();
    weak.dispose();
    expect(live(memoryStats())).toEqual(empty);
  });
});

describe('encoder and decoder: forward + backward leave only the gradients (safety net off)', () => {
  it('Dinov2WithRegisters latent at a resized grid, then RAEDecoder, backward to every parameter', async () => {
    const empty = live(memoryStats());
    const encoder = Dinov2WithRegisters.fromConfig({
      hidden_size: 32,
      num_hidden_layers: 2,
      num_attention_heads: 2,
      patch_size: 14,
      image_size: 28,
      num_register_tokens: 2,
    });
    const decoder = RAEDecoder.fromConfig({
      hidden_size: 32,
      decoder_hidden_size: 48,
      decoder_num_hidden_layers: 2,
      decoder_num_attention_heads: 4,
      decoder_intermediate_size: 96,
      patch_size: 14,
      num_channels: 3,
      num_patches: 9,
    });
    const pixels = randn([2, 3, 42, 42], { seed: 8 }); // grid 3 from a 2×2 position table: resampled positions
    const params = [...encoder.trainableParameters(), ...decoder.trainableParameters()];
    const pass = () => {
      const latent = encoder.latent(pixels);
      const logits = decoder.forward(latent);
      const image = decoder.unpatchify(logits);
      const loss = F.l1Loss(image, pixels);
      backward(loss);
      for (const u of [latent, logits, image, loss]) u.dispose();
    };
    try {
      const zeroGrad = () =>
        params.forEach((p) => {
          p.grad?.dispose();
          p.grad = null;
        });
      pass(); // builds the encoder's cached resampling matrices
      zeroGrad();
      const base = live(memoryStats());
      pass();
      // Every parameter gets a gradient but DINOv2's mask token (masked inputs only) and its final
      // affine LayerNorm (the RAE latent uses a LayerNorm without affine).
      const unused = encoder
        .namedParameters()
        .filter(([, p]) => p.grad === null)
        .map(([k]) => k);
      expect(unused.sort()).toEqual(['embeddings.mask_token', 'layernorm.bias', 'layernorm.weight']);
      expect(decoder.trainableParameters().every((p) => p.grad !== null)).toBe(true);
      expect(memoryStats().liveTensors).toBe(base.liveTensors + params.length - unused.length);
      zeroGrad();
      expect(live(memoryStats())).toEqual(base);
    } finally {
      encoder.dispose();
      decoder.dispose();
      pixels.dispose();
    }
    // The two cached resampling matrices are the encoder's (kept for later calls at this size).
    expect(memoryStats().liveTensors).toBe(empty.liveTensors + 2);
  });
});

describe('module scopes', () => {
  it('a forward called inside a user scope hands its output to that scope; an async forward is refused cleanly', async () => {
    const lin = new Linear(4, 3);
    const x = randn([2, 4], { seed: 7 });
    const before = live(memoryStats());
    let y: Tensor | undefined;
    scope(() => {
      y = noGrad(() => lin.forward(x));
      expect(memoryStats().liveTensors).toBe(before.liveTensors + 1);
    });
    expect(y!.isDisposed).toBe(true);
    expect(live(memoryStats())).toEqual(before);

    class AsyncForward extends Module {
      async forward(t: Tensor): Promise<Tensor> {
        return t;
      }
    }
    expect(() => new AsyncForward().forward(x)).toThrow(/use scopeAsync/);
    // The failed call left no scope open behind it.
    expect(scopeStack.length).toBe(0);
    x.dispose();
    lin.dispose();
  });
});
