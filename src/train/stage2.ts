/**
 * Stage 2 (spec §4): DiT or DiT^DH trained with flow matching on per-element normalised latents
 * encoded on the fly (x_t = (1 − t)·x + t·ε, target ε − x), time uniform or logit-normal and
 * shifted by α = √(C·h·w / base) unless the shift is off; AdamW (0.9, 0.95), the reference's
 * hold-then-linear-decay LR, gradient clipping, EMA, label dropout inside the model.
 */
import * as ops from '../autograd/ops/index.js';
import { backward } from '../autograd/tape.js';
import { flowMatchingBatch, shiftAlpha } from '../diffusion/flow.js';
import type { DiT, DiTDH } from '../models/dit.js';
import { AdamW, EMA } from '../nn/optim.js';
import { getGeneratorState, setGeneratorState, tensor, toArray } from '../tensor/creation.js';
import type { Tensor } from '../tensor/tensor.js';
import path from 'node:path';
import { fingerprint, modelShape, type RunConfig } from './config.js';
import { buildDiT, ditConfig, type EncoderInfo, encodeBatch, loadData, loadEncoder, type RunData } from './context.js';
import { BatchLoader, imagesToTensor, TokenCache } from './data/index.js';
import { ensureLatentStats, type LatentStats } from './latent-stats.js';
import { type LoopResult, runLoop } from './loop.js';
import { checkMemory } from './memory.js';
import { tokensToLatent } from './rae.js';
import { RunError } from './run-folder.js';
import { holdLinear } from './schedule.js';
import { resumePoint, saveStage, trainingStep } from './stage-common.js';
import type { StageOptions } from './stage1.js';

/** The model-shaping fields of a DiT run, including the number of classes of its data. */
export function ditShape(c: RunConfig, numClasses: number): Record<string, unknown> {
  return { ...modelShape(c, 'dit'), numClasses };
}

export function latentAlpha(c: RunConfig, dim: number, grid: number): number {
  return c.dit.shift ? shiftAlpha(dim * grid * grid, c.dit.shiftBase) : 1;
}

export async function trainDiTStage(
  o: StageOptions,
): Promise<LoopResult & { model: DiT | DiTDH; ema: EMA; stats: LatentStats; alpha: number }> {
  const c = o.config;
  const d = c.dit;
  const enc = o.enc ?? (await loadEncoder(o.runDir, c));
  checkMemory('dit', c, enc);
  const data = o.data ?? (await loadData(o.runDir, c));
  if (d.batch > data.train.size) throw new RunError(`--batch ${d.batch} is larger than the ${data.train.size} training images`);
  const numClasses = data.train.classes.length;
  const model = buildDiT(c, ditConfig(c, enc, numClasses), d.kind);
  const shape = ditShape(c, numClasses);
  const fp = fingerprint(shape);
  if (!o.quiet) console.log('latent statistics (per element, over the training set)…');
  const stats = await ensureLatentStats(o.runDir, enc, data.train, Math.max(d.batch, 32));
  const alpha = latentAlpha(c, enc.dim, enc.grid);
  const params = model.trainableParameters();
  const opt = new AdamW(params, { lr: d.lr, betas: [0.9, 0.95], weightDecay: 0 });
  const ema = new EMA(params, d.ema);
  const cache = d.tokenCache ? await buildTokenCache(o.runDir, c, enc, data, o.quiet) : null;
  const loader = new BatchLoader(data.train, { batch: d.batch, seed: c.seed + 2, flip: c.data.flip, dropLast: true, images: !cache });
  const start = resumePoint({
    runDir: o.runDir,
    stage: 'dit',
    resume: o.resume,
    fingerprint: fp,
    shape,
    model,
    ema,
    optimizer: opt,
    loader,
    totalSteps: d.steps,
    quiet: o.quiet,
  });
  if (start === 0) setGeneratorState({ seed: c.seed + 2, stream: 1 });

  const hold = Math.round(d.holdFraction * d.steps);
  const decayEnd = Math.max(hold, Math.round(d.decayEndFraction * d.steps));
  let gradNormSq: Tensor | null = null;
  // One training step on a batch of tokens (or images) and labels; the same path every step, so
  // it is compiled (recorded once, replayed) unless --eager.
  const body = (x: Tensor, y: Tensor) => {
    const z = tokensToLatent(cache ? x : encodeBatch(enc, x), enc.grid);
    const zn = ops.div(ops.sub(z, stats.mean), stats.std);
    const { xt, t, target } = flowMatchingBatch(zn, alpha, { timeDist: d.timeDist });
    const diff = ops.sub(model.forward(xt, t, y), target);
    const l = ops.mean(ops.mul(diff, diff));
    backward(l);
    const sq = d.clip > 0 ? opt.clipGradNorm(d.clip) : null;
    opt.step();
    opt.zeroGrad();
    ema.update();
    return { loss: l, normSq: sq };
  };
  const train = trainingStep(body, { eager: o.eager, name: 'stage 2 step', quiet: o.quiet });
  model.train();
  try {
    const result = await runLoop({
      stage: 'dit',
      label: `stage 2 ${d.kind === 'ditdh' ? 'DiT^DH' : 'DiT'}`,
      runDir: o.runDir,
      startStep: start,
      totalSteps: d.steps,
      logEvery: d.logEvery,
      checkpointEvery: d.checkpointEvery,
      imagesPerStep: d.batch,
      debugNanAtStep: o.debugNanAtStep,
      debugStopAtStep: o.debugStopAtStep,
      debugLoseDeviceAtStep: o.debugLoseDeviceAtStep,
      quiet: o.quiet,
      lrAt: (step) => holdLinear(step, d.lr, d.finalLr, hold, decayEnd),
      step: async (step, lr) => {
        const batch = await loader.next();
        // Tokens from the cache (mirrored where the loader flips), or encoded now.
        const x = cache
          ? tensor(cache.read(batch.indices, batch.flips), [batch.count, enc.grid * enc.grid, enc.dim])
          : imagesToTensor(batch.images, batch.count, c.data.imageSize);
        const y = tensor(batch.labels, [batch.count], { dtype: 'i32' });
        const logged = (step + 1) % d.logEvery === 0 || step + 1 === d.steps;
        // Set before the step: a replayed step reads the learning rate then (src/tensor/compile.ts).
        opt.lr = lr;
        const { loss, normSq } = train(x, y);
        x.dispose();
        y.dispose();
        gradNormSq?.dispose();
        gradNormSq = logged ? normSq : null;
        if (!logged) normSq?.dispose();
        return loss;
      },
      save: (done) =>
        saveStage({
          runDir: o.runDir,
          stage: 'dit',
          step: done,
          fingerprint: fp,
          shape,
          generator: getGeneratorState(),
          loader,
          model,
          ema,
          optimizer: opt,
          keep: d.keep,
        }),
      extra: async (): Promise<Record<string, number>> => {
        if (!gradNormSq) return {};
        const v = (await toArray(gradNormSq))[0];
        gradNormSq.dispose();
        gradNormSq = null;
        return { gradNorm: Math.sqrt(v) };
      },
    });
    model.eval();
    return { ...result, model, ema, stats, alpha };
  } finally {
    (gradNormSq as Tensor | null)?.dispose();
    train.dispose();
    opt.dispose();
    cache?.close();
    await loader.close();
  }
}

/**
 * The training set's tokens (and those of the mirrored images), encoded once into
 * DIR/token-cache; rebuilt when the encoder or the data selection changes.
 */
async function buildTokenCache(runDir: string, c: RunConfig, enc: EncoderInfo, data: RunData, quiet?: boolean): Promise<TokenCache> {
  const { source, format, imageSize, maxImages, heldOut } = c.data;
  const fp = fingerprint({
    encoder: c.encoder,
    weights: enc.identity,
    seed: c.seed,
    data: { source, format, imageSize, maxImages, heldOut },
    size: data.train.size,
  });
  const dir = path.join(runDir, 'token-cache');
  const found = TokenCache.open(dir, fp);
  if (found && found.size === data.train.size) return found;
  if (!quiet) console.log(`encoding ${data.train.size} training images once (and their mirror images) into ${dir}…`);
  return TokenCache.build(
    dir,
    data.train,
    async (images, n) => {
      const x = imagesToTensor(images, n, imageSize);
      const tok = encodeBatch(enc, x);
      const host = (await toArray(tok)) as Float32Array;
      x.dispose();
      tok.dispose();
      return host;
    },
    { fingerprint: fp, tokenShape: [enc.grid * enc.grid, enc.dim], flips: c.data.flip, batch: 32 },
  );
}
