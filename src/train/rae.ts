/**
 * The two RAE training stages and sampling, as small reusable loops:
 * stage 1 trains the ViT decoder on frozen encoder tokens with noise augmentation (spec §3.6);
 * stage 2 trains DiT / DiT^DH with shifted flow matching on normalised latents (spec §4).
 * Losses are read back every `logEvery` steps only.
 */
import * as ops from '../autograd/ops/index.js';
import { backward, noGrad } from '../autograd/tape.js';
import { flowMatchingBatch, shiftAlpha } from '../diffusion/flow.js';
import { runtime } from '../gpu/runtime.js';
import type { Dinov2 } from '../models/dinov2.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../models/dinov2.js';
import type { DiT, DiTDH } from '../models/dit.js';
import type { RAEDecoder } from '../models/rae-decoder.js';
import { AdamW, EMA } from '../nn/optim.js';
import { randn, tensor, toArray, uniform } from '../tensor/creation.js';
import { scope } from '../tensor/scope.js';
import { type Tensor, viewOf } from '../tensor/tensor.js';
import { Progress } from './progress.js';
import { warmupCosine } from './schedule.js';
import { makeRng } from '../cpu/random.js';

/** Seeded host RNG for batch indices (mulberry32). */
/** Seeded host RNG (mulberry32), shared with the float64 reference. */
export const hostRng = makeRng;

function batchIndices(rng: () => number, n: number, b: number): Int32Array {
  return Int32Array.from({ length: b }, () => Math.floor(rng() * n));
}

const i32 = (a: Int32Array) => tensor(a, [a.length], { dtype: 'i32' });

/** Images [N, 3, H, W] in [0, 1] → ImageNet-normalised pixels. */
export function normalizeImages(x: Tensor): Tensor {
  return scope(() => ops.div(ops.sub(x, imagenet(IMAGENET_MEAN)), imagenet(IMAGENET_STD)));
}

/** Normalised pixels → [0, 1] space (not clamped). */
export function denormalizeImages(x: Tensor): Tensor {
  return scope(() => ops.add(ops.mul(x, imagenet(IMAGENET_STD)), imagenet(IMAGENET_MEAN)));
}

/**
 * A per-channel constant [1, 3, 1, 1], uploaded once per runtime and kept: a compiled training
 * step (src/tensor/compile.ts) cannot contain uploads, and the constants never change. Callers
 * get a fresh view each time, which their scopes may dispose.
 */
const imagenetCache = new WeakMap<object, Map<readonly number[], Tensor>>();
function imagenet(perChannel: readonly number[]): Tensor {
  const rt = runtime();
  let m = imagenetCache.get(rt);
  if (!m) imagenetCache.set(rt, (m = new Map()));
  let t = m.get(perChannel);
  if (!t || t.isDisposed) m.set(perChannel, (t = tensor(Float32Array.from(perChannel), [1, 3, 1, 1]).keep()));
  return viewOf(t, t.shape, t.strides, t.offset);
}

/** Encodes a data set in batches with the frozen encoder: [N, T, D] latent tokens (kept). */
export async function encodeAll(encoder: Dinov2, images: Tensor, batch: number, onBatch?: (done: number) => void): Promise<Tensor> {
  const N = images.shape[0];
  // One scope per batch: only its latent outlives it. Async so the loop yields to the runtime.
  const parts: Tensor[] = [];
  await noGrad(async () => {
    for (let i = 0; i < N; i += batch) {
      parts.push(scope(() => encoder.latent(normalizeImages(ops.narrow(images, 0, i, Math.min(batch, N - i))))));
      onBatch?.(Math.min(i + batch, N));
      await runtime().yieldIfBusy();
    }
  });
  const all = noGrad(() => ops.cat(parts, 0));
  for (const p of parts) p.dispose();
  return all.keep();
}

/** Tokens [B, N, D] ↔ latent images [B, D, h, w] (z[b, c, i, j] = tok[b, h·i + j, c]). */
export function tokensToLatent(tok: Tensor, h: number): Tensor {
  const [B, N, D] = tok.shape;
  return scope(() => ops.reshape(ops.permute(tok, [0, 2, 1]), [B, D, h, N / h]));
}
export function latentToTokens(z: Tensor): Tensor {
  const [B, D, h, w] = z.shape;
  return scope(() => ops.contiguous(ops.permute(ops.reshape(z, [B, D, h * w]), [0, 2, 1])));
}

/** Per-element statistics over the data set (spec §1.3): mean and variance of [N, …]. */
export function latentStats(z: Tensor): { mean: Tensor; std: Tensor } {
  return noGrad(() => {
    const { mean, std } = scope(() => ({
      mean: ops.mean(z, 0, { keepdim: true }),
      std: ops.unary('sqrt', ops.add(ops.variance(z, 0, { keepdim: true, correction: 0 }), 1e-5)),
    }));
    return { mean: mean.keep(), std: std.keep() };
  });
}

export interface StageOptions {
  steps: number;
  batch: number;
  lr: number;
  seed?: number;
  logEvery?: number;
  label?: string;
  quiet?: boolean;
}

export interface StageResult {
  losses: { step: number; loss: number }[];
  seconds: number;
}

/**
 * Stage 1: decoder(tokens + σ·n) → pixels, L1 loss against the image, σ = τ·U(0, 1) per sample
 * (the reference code's noise augmentation). AdamW (0.9, 0.95), warmup + cosine, no decay.
 */
export async function trainDecoder(
  decoder: RAEDecoder,
  tokens: Tensor,
  images: Tensor,
  opts: StageOptions & { tau?: number },
): Promise<StageResult> {
  const tau = opts.tau ?? 0.8;
  const rng = hostRng(opts.seed ?? 1);
  const opt = new AdamW(decoder.trainableParameters(), { lr: opts.lr, betas: [0.9, 0.95], weightDecay: 0 });
  const prog = new Progress(opts.label ?? 'decoder', opts.steps, opts.quiet ? () => {} : undefined);
  const losses: StageResult['losses'] = [];
  const logEvery = opts.logEvery ?? 10;
  decoder.train();
  for (let step = 0; step < opts.steps; step++) {
    opt.lr = warmupCosine(step, opts.steps, opts.lr, opts.lr / 10, Math.max(1, Math.floor(opts.steps / 16)));
    const loss = scope(() => {
      const idx = i32(batchIndices(rng, tokens.shape[0], opts.batch));
      const z = ops.indexSelect(tokens, 0, idx);
      const x = ops.indexSelect(images, 0, idx);
      const sigma = ops.mul(uniform([opts.batch, 1, 1], 0, 1), tau);
      const n = randn(z.shape);
      const zn = ops.add(z, ops.mul(n, sigma));
      const logits = decoder.forward(zn);
      const img = denormalizeImages(decoder.unpatchify(logits));
      const l = ops.mean(ops.unary('abs', ops.sub(img, x)));
      backward(l);
      opt.step();
      opt.zeroGrad();
      return l;
    });
    if ((step + 1) % logEvery === 0 || step + 1 === opts.steps) {
      const v = (await toArray(loss))[0];
      losses.push({ step: step + 1, loss: v });
      prog.update(step + 1, { l1: v, lr: opt.lr });
    }
    loss.dispose();
    await runtime().yieldIfBusy();
  }
  opt.dispose();
  decoder.eval();
  return { losses, seconds: prog.elapsedSeconds() };
}

/**
 * Stage 2: flow matching on normalised latents [N, C, h, w] with the shift α = √(C·h·w/4096),
 * label dropout inside the model, AdamW (0.9, 0.95), grad-clip 1.0, EMA.
 */
export async function trainDiffusion(
  model: DiT | DiTDH,
  latents: Tensor,
  labels: Int32Array,
  opts: StageOptions & { emaDecay?: number; clip?: number; timeDist?: 'uniform' | 'logit-normal' },
): Promise<StageResult & { ema: EMA; alpha: number }> {
  const [N, C, h, w] = latents.shape;
  const alpha = shiftAlpha(C * h * w);
  const rng = hostRng(opts.seed ?? 2);
  const params = model.trainableParameters();
  const opt = new AdamW(params, { lr: opts.lr, betas: [0.9, 0.95], weightDecay: 0 });
  const ema = new EMA(params, opts.emaDecay ?? 0.999);
  const prog = new Progress(opts.label ?? 'diffusion', opts.steps, opts.quiet ? () => {} : undefined);
  const losses: StageResult['losses'] = [];
  const logEvery = opts.logEvery ?? 10;
  model.train();
  for (let step = 0; step < opts.steps; step++) {
    const loss = scope(() => {
      const host = batchIndices(rng, N, opts.batch);
      const x = ops.indexSelect(latents, 0, i32(host));
      const y = i32(host.map((i) => labels[i]));
      const { xt, t, target } = flowMatchingBatch(x, alpha, { timeDist: opts.timeDist ?? 'uniform' });
      const v = model.forward(xt, t, y);
      const d = ops.sub(v, target);
      const l = ops.mean(ops.mul(d, d));
      backward(l);
      if (opts.clip) opt.clipGradNorm(opts.clip);
      opt.step();
      opt.zeroGrad();
      ema.update();
      return l;
    });
    if ((step + 1) % logEvery === 0 || step + 1 === opts.steps) {
      const v = (await toArray(loss))[0];
      losses.push({ step: step + 1, loss: v });
      prog.update(step + 1, { mse: v });
    }
    loss.dispose();
    await runtime().yieldIfBusy();
  }
  opt.dispose();
  model.eval();
  return { losses, seconds: prog.elapsedSeconds(), ema, alpha };
}
