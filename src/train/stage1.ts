/**
 * Stage 1 (spec §3): the RAE decoder on frozen-encoder tokens with noise augmentation, L1 plus an
 * optional feature loss through the frozen encoder, AdamW (0.9, 0.95) with warm-up + cosine, an
 * EMA of the decoder, and PSNR/SSIM of held-out reconstructions logged as it trains.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as ops from '../autograd/ops/index.js';
import { backward, noGrad } from '../autograd/tape.js';
import { imageGrid, writePng } from '../io/images.js';
import type { RAEDecoder } from '../models/rae-decoder.js';
import { AdamW, EMA } from '../nn/optim.js';
import { getGeneratorState, randn, setGeneratorState, toArray, uniform } from '../tensor/creation.js';
import { scope } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import { fingerprint, modelShape, type RunConfig } from './config.js';
import { type EncoderInfo, buildDecoder, encodeBatch, loadData, loadEncoder, type RunData } from './context.js';
import { BatchLoader, imagesToTensor } from './data/index.js';
import { psnr, ssim } from './image-metrics.js';
import { type LoopResult, runLoop } from './loop.js';
import { checkMemory } from './memory.js';
import { denormalizeImages } from './rae.js';
import { RunError } from './run-folder.js';
import { warmupCosine } from './schedule.js';
import { resumePoint, saveStage, trainingStep } from './stage-common.js';

export interface StageOptions {
  runDir: string;
  config: RunConfig;
  resume: boolean;
  enc?: EncoderInfo;
  data?: RunData;
  debugNanAtStep?: number;
  debugStopAtStep?: number;
  debugLoseDeviceAtStep?: number;
  quiet?: boolean;
  /** Run the training step eagerly instead of compiled (recorded once, replayed). */
  eager?: boolean;
}

/** Noise-augmented tokens z + σ·n, one σ per sample (reference code τ·U(0,1) or paper |N(0,τ²)|). */
function augment(z: Tensor, tau: number, kind: 'uniform' | 'half-normal'): Tensor {
  if (tau === 0) return z;
  return scope(() => {
    const B = z.shape[0];
    const sigma = kind === 'uniform' ? ops.mul(uniform([B, 1, 1], 0, 1), tau) : ops.mul(ops.unary('abs', randn([B, 1, 1])), tau);
    return ops.add(z, ops.mul(randn(z.shape), sigma));
  });
}

/** Distance between the encoder's tokens of the reconstruction and of the original. */
function featureLoss(f: Tensor, z: Tensor, kind: 'l2' | 'cosine'): Tensor {
  return scope(() => {
    if (kind === 'l2') {
      const d = ops.sub(f, z);
      return ops.mean(ops.mul(d, d));
    }
    const dot = ops.sum(ops.mul(f, z), -1);
    const norms = ops.unary('sqrt', ops.add(ops.mul(ops.sum(ops.mul(f, f), -1), ops.sum(ops.mul(z, z), -1)), 1e-12));
    return ops.mean(ops.sub(1, ops.div(dot, norms)));
  });
}

export async function trainDecoderStage(
  o: StageOptions,
): Promise<LoopResult & { decoder: RAEDecoder; ema: EMA; enc: EncoderInfo; data: RunData }> {
  const c = o.config;
  const d = c.decoder;
  const enc = o.enc ?? (await loadEncoder(o.runDir, c));
  checkMemory('decoder', c, enc);
  const data = o.data ?? (await loadData(o.runDir, c));
  if (d.perceptual !== 'none' && c.data.imageSize !== enc.inputSize) {
    throw new RunError(
      `--perceptual ${d.perceptual} needs the image size (${c.data.imageSize}) to equal the encoder's input size (${enc.inputSize}): resizing has no backward pass`,
    );
  }
  if (d.batch > data.train.size) throw new RunError(`--batch ${d.batch} is larger than the ${data.train.size} training images`);
  const decoder = buildDecoder(c, enc);
  const shape = modelShape(c, 'decoder');
  const fp = fingerprint(shape);
  const params = decoder.trainableParameters();
  const opt = new AdamW(params, { lr: d.lr, betas: [0.9, 0.95], weightDecay: 0 });
  const ema = new EMA(params, d.ema);
  const loader = new BatchLoader(data.train, { batch: d.batch, seed: c.seed + 1, flip: c.data.flip, dropLast: true });
  const start = resumePoint({
    runDir: o.runDir,
    stage: 'decoder',
    resume: o.resume,
    fingerprint: fp,
    shape,
    model: decoder,
    ema,
    optimizer: opt,
    loader,
    totalSteps: d.steps,
    quiet: o.quiet,
  });
  if (start === 0) setGeneratorState({ seed: c.seed + 1, stream: 1 });

  // A fixed set of held-out images for PSNR/SSIM and the reconstruction strips.
  const S = c.data.imageSize;
  const nEval = Math.min(d.evalImages, data.heldOut.size);
  const evalBytes = nEval ? await data.heldOut.read(Int32Array.from({ length: nEval }, (_, i) => i)) : new Uint8Array();
  const evalX = nEval ? imagesToTensor(evalBytes, nEval, S).keep() : null;
  const evaluate = async (done: number): Promise<Record<string, number>> => {
    if (!evalX || (done % d.evalEvery !== 0 && done !== d.steps)) return {};
    decoder.eval();
    const rec = noGrad(() => scope(() => denormalizeImages(decoder.unpatchify(decoder.forward(encodeBatch(enc, evalX))))));
    decoder.train();
    const recHost = (await toArray(rec)) as Float32Array;
    rec.dispose();
    const orig = Float32Array.from(evalBytes, (v) => v / 255);
    const m = { psnr: psnr(recHost, orig, nEval), ssim: S >= 11 ? ssim(recHost, orig, nEval, S, S) : Number.NaN };
    const dir = path.join(o.runDir, 'reconstructions');
    fs.mkdirSync(dir, { recursive: true });
    const base = path.join(dir, `step-${String(done).padStart(8, '0')}`);
    const both = new Float32Array(2 * orig.length);
    both.set(orig);
    both.set(recHost, orig.length);
    writePng(`${base}.png`, imageGrid(both, 2 * nEval, S, S, nEval));
    fs.writeFileSync(`${base}.json`, `${JSON.stringify({ step: done, psnr: m.psnr, ssim: m.ssim, count: nEval })}\n`);
    return Number.isNaN(m.ssim) ? { psnr: m.psnr } : m;
  };

  const warmup = Math.max(1, Math.round(d.warmupFraction * d.steps));
  // One step on a batch of images; the same path every step, so compiled unless --eager.
  const train = trainingStep(
    (x: Tensor) => {
      const z = encodeBatch(enc, x);
      const recNorm = decoder.unpatchify(decoder.forward(augment(z, d.tau, d.noise)));
      let l = ops.mean(ops.unary('abs', ops.sub(denormalizeImages(recNorm), x)));
      if (d.perceptual !== 'none' && d.perceptualWeight > 0) {
        // The decoder's output is already in the encoder's (ImageNet-normalised) input space.
        l = ops.add(l, ops.mul(featureLoss(enc.encoder.latent(recNorm), z, d.perceptual), d.perceptualWeight));
      }
      backward(l);
      opt.step();
      opt.zeroGrad();
      ema.update();
      return l;
    },
    { eager: o.eager, name: 'stage 1 step', quiet: o.quiet },
  );
  decoder.train();
  try {
    const result = await runLoop({
      stage: 'decoder',
      label: 'stage 1 decoder',
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
      lrAt: (step) => warmupCosine(step, d.steps, d.lr, d.finalLr, warmup),
      step: async (_step, lr) => {
        const batch = await loader.next();
        const x = imagesToTensor(batch.images, batch.count, S);
        // Set before the step: a replayed step reads the learning rate then (src/tensor/compile.ts).
        opt.lr = lr;
        const loss = train(x);
        x.dispose();
        return loss;
      },
      save: (done) =>
        saveStage({
          runDir: o.runDir,
          stage: 'decoder',
          step: done,
          fingerprint: fp,
          shape,
          generator: getGeneratorState(),
          loader,
          model: decoder,
          ema,
          optimizer: opt,
          keep: d.keep,
        }),
      extra: evaluate,
    });
    decoder.eval();
    return { ...result, decoder, ema, enc, data };
  } finally {
    train.dispose();
    evalX?.dispose();
    opt.dispose();
    await loader.close();
  }
}
