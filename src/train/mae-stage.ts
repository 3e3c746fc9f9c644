/**
 * MAE pretraining (`rae pretrain-encoder`): the masked autoencoder of src/models/mae.ts on the
 * run's images, AdamW (0.9, 0.95, weight decay 0.05) with warm-up + cosine, the shared step loop,
 * checkpoints and --resume as the RAE stages, and at the end the encoder alone in DIR/encoder/
 * (model.safetensors + config.json) — the folder `--encoder` accepts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { backward } from '../autograd/tape.js';
import { makeRng } from '../cpu/random.js';
import { saveSafetensors } from '../io/safetensors.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../models/dinov2.js';
import { type MaeConfig, MaskedAutoencoder, randomMasking } from '../models/mae.js';
import { AdamW, EMA } from '../nn/optim.js';
import { getGeneratorState, manualSeed, setGeneratorState, toArray } from '../tensor/creation.js';
import { scope } from '../tensor/scope.js';
import { fingerprint, modelShape, type RunConfig } from './config.js';
import { loadData, type RunData } from './context.js';
import { BatchLoader, imagesToTensor } from './data/index.js';
import { type LoopResult, runLoop } from './loop.js';
import { normalizeImages } from './rae.js';
import { RunError, writeFileAtomic } from './run-folder.js';
import { warmupCosine } from './schedule.js';
import { resumePoint, saveStage } from './stage-common.js';

export const MAE_ENCODER_DIR = 'encoder';

/** The architecture of a run's MAE from its configuration (input size = the data's image size). */
export function maeConfig(c: RunConfig): MaeConfig {
  const m = c.mae;
  const S = c.data.imageSize;
  if (S % m.patch) throw new RunError(`mae.patch ${m.patch} does not divide the image size ${S}`);
  for (const [w, h, name] of [
    [m.hidden, m.heads, 'mae.hidden'],
    [m.decoderHidden, m.decoderHeads, 'mae.decoderHidden'],
  ] as const) {
    if (w % h) throw new RunError(`${name} ${w} is not divisible by its ${h} heads`);
    if (w % 4) throw new RunError(`${name} ${w} must be a multiple of 4 (2-D sin-cos position embedding)`);
  }
  return {
    model_type: 'mae-vit',
    image_size: S,
    patch_size: m.patch,
    num_channels: 3,
    hidden_size: m.hidden,
    num_hidden_layers: m.layers,
    num_attention_heads: m.heads,
    mlp_ratio: m.mlpRatio,
    decoder_hidden_size: m.decoderHidden,
    decoder_num_hidden_layers: m.decoderLayers,
    decoder_num_attention_heads: m.decoderHeads,
    mask_ratio: m.maskRatio,
    layer_norm_eps: 1e-6,
  };
}

/** Everything `loadEncoder` needs to use the encoder: architecture, input, normalisation, token layout. */
export interface MaeEncoderFile extends MaeConfig {
  image_mean: number[];
  image_std: number[];
  latent: { drop_prefix_tokens: number; grid: number; dim: number; description: string };
  pretraining: { steps: number; seconds?: number; data: string };
}

export const maeSeed = (c: RunConfig) => c.seed + 0x3ae;

/** The masking of step `step`: a function of (seed, step) only, so a resumed run masks identically. */
const maskingRng = (c: RunConfig, step: number) => makeRng((maeSeed(c) * 1_000_003 + step) >>> 0);

export interface MaeStageOptions {
  runDir: string;
  config: RunConfig;
  resume: boolean;
  data?: RunData;
  debugNanAtStep?: number;
  debugStopAtStep?: number;
  debugLoseDeviceAtStep?: number;
  quiet?: boolean;
}

export async function pretrainMaeStage(o: MaeStageOptions): Promise<LoopResult & { encoderDir?: string }> {
  const c = o.config;
  const m = c.mae;
  const cfg = maeConfig(c);
  const data = o.data ?? (await loadData(o.runDir, c));
  if (m.batch > data.train.size) throw new RunError(`--batch ${m.batch} is larger than the ${data.train.size} training images`);
  manualSeed(maeSeed(c));
  const model = MaskedAutoencoder.fromConfig(cfg);
  const shape = modelShape(c, 'mae');
  const fp = fingerprint(shape);
  const params = model.trainableParameters();
  const opt = new AdamW(params, { lr: m.lr, betas: [0.9, 0.95], weightDecay: m.weightDecay });
  // Checkpoints carry an EMA; MAE exports the raw weights, so it only rides along (decay 0: a copy).
  const ema = new EMA(params, 0);
  const loader = new BatchLoader(data.train, { batch: m.batch, seed: maeSeed(c) + 1, flip: c.data.flip, dropLast: true });
  const start = resumePoint({
    runDir: o.runDir,
    stage: 'mae',
    resume: o.resume,
    fingerprint: fp,
    shape,
    model,
    ema,
    optimizer: opt,
    loader,
    totalSteps: m.steps,
    quiet: o.quiet,
  });
  if (start === 0) setGeneratorState({ seed: maeSeed(c) + 1, stream: 1 });
  const S = c.data.imageSize;
  const N = (S / m.patch) ** 2;
  const warmup = Math.max(1, Math.round(m.warmupFraction * m.steps));
  const t0 = performance.now();
  model.train();
  try {
    const result = await runLoop({
      stage: 'mae',
      label: 'MAE pretraining',
      runDir: o.runDir,
      startStep: start,
      totalSteps: m.steps,
      logEvery: m.logEvery,
      checkpointEvery: m.checkpointEvery,
      imagesPerStep: m.batch,
      debugNanAtStep: o.debugNanAtStep,
      debugStopAtStep: o.debugStopAtStep,
      debugLoseDeviceAtStep: o.debugLoseDeviceAtStep,
      quiet: o.quiet,
      lrAt: (step) => warmupCosine(step, m.steps, m.lr, m.finalLr, warmup),
      step: async (step, lr) => {
        const batch = await loader.next();
        const x = imagesToTensor(batch.images, batch.count, S);
        const masking = randomMasking(batch.count, N, m.maskRatio, maskingRng(c, step));
        const loss = scope(() => {
          const l = model.forward(normalizeImages(x), masking);
          backward(l);
          opt.lr = lr;
          opt.step();
          opt.zeroGrad();
          ema.update();
          return l;
        });
        x.dispose();
        return loss;
      },
      save: (done) =>
        saveStage({
          runDir: o.runDir,
          stage: 'mae',
          step: done,
          fingerprint: fp,
          shape,
          generator: getGeneratorState(),
          loader,
          model,
          ema,
          optimizer: opt,
          keep: m.keep,
        }),
    });
    let encoderDir: string | undefined;
    if (!result.interrupted && result.done >= m.steps) {
      encoderDir = await saveMaeEncoder(o.runDir, c, model, { steps: result.done, seconds: (performance.now() - t0) / 1000 });
    }
    return { ...result, encoderDir };
  } finally {
    opt.dispose();
    ema.dispose();
    model.dispose();
    await loader.close();
  }
}

/** Writes DIR/encoder/{model.safetensors, config.json}; config.json last, so its presence marks a complete export. */
async function saveMaeEncoder(
  runDir: string,
  c: RunConfig,
  model: MaskedAutoencoder,
  info: { steps: number; seconds: number },
): Promise<string> {
  const dir = path.join(runDir, MAE_ENCODER_DIR);
  fs.mkdirSync(dir, { recursive: true });
  fs.rmSync(path.join(dir, 'config.json'), { force: true });
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [k, t] of model.encoder.namedParameters()) tensors.set(k, { shape: [...t.shape], data: (await toArray(t)) as Float32Array });
  saveSafetensors(path.join(dir, 'model.safetensors'), tensors);
  const cfg = model.config;
  const grid = cfg.image_size / cfg.patch_size;
  const file: MaeEncoderFile = {
    ...cfg,
    image_mean: [...IMAGENET_MEAN],
    image_std: [...IMAGENET_STD],
    latent: {
      drop_prefix_tokens: 1,
      grid,
      dim: cfg.hidden_size,
      description: 'patch tokens in row-major order after the final LayerNorm with its affine removed (eps 1e-6); the CLS token is dropped',
    },
    pretraining: { steps: info.steps, seconds: Math.round(info.seconds * 10) / 10, data: c.data.source },
  };
  writeFileAtomic(path.join(dir, 'config.json'), `${JSON.stringify(file, null, 2)}\n`);
  return dir;
}
