/**
 * MAE pretraining (`rae pretrain-encoder`): the masked autoencoder of src/models/mae.ts on the
 * run's images, AdamW (0.9, 0.95, weight decay 0.05) with warm-up + cosine, the shared step loop,
 * checkpoints and --resume as the RAE stages, and at the end the encoder alone in DIR/encoder/
 * (model.safetensors + config.json) — the folder `--encoder` accepts.
 */
import { backward } from '../autograd/tape.js';
import { makeRng } from '../cpu/random.js';
import { type MaeConfig, MaskedAutoencoder, randomMasking } from '../models/mae.js';
import { AdamW, EMA } from '../nn/optim.js';
import { getGeneratorState, manualSeed, setGeneratorState } from '../tensor/creation.js';
import { scope } from '../tensor/scope.js';
import { fingerprint, modelShape, type RunConfig } from './config.js';
import { loadData, type RunData } from './context.js';
import { BatchLoader, imagesToTensor } from './data/index.js';
import { type LoopResult, runLoop } from './loop.js';
import { normalizeImages } from './rae.js';
import { saveMaeEncoder } from './mae-files.js';
import { RunError } from './run-folder.js';
import { warmupCosine } from './schedule.js';
import { resumePoint, saveStage } from './stage-common.js';

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
