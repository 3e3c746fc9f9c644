/**
 * `rae sample`: images from a trained run. Loads the latest (or a chosen) DiT checkpoint and the
 * latest decoder checkpoint (EMA weights by default), integrates the flow ODE from noise with
 * Euler or Heun on the shifted grid, optionally guided (CFG with an interval, or AutoGuidance by
 * a weaker checkpoint), un-normalises with the run's latent statistics and decodes.
 *
 * Writes DIR/samples/<tag>/: grid.png, class-<k>.png, samples.safetensors (images u8
 * [n, 3, S, S], labels i32 [n]) and samples.json.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as ops from '../autograd/ops/index.js';
import { noGrad } from '../autograd/tape.js';
import { autoGuidanceVelocity, eulerSample, heunSample, samplerGrid, type VelocityFn } from '../diffusion/flow.js';
import { imageGrid, writePng } from '../io/images.js';
import { saveSafetensors } from '../io/safetensors.js';
import type { DiT, DiTDH } from '../models/dit.js';
import type { RAEDecoder } from '../models/rae-decoder.js';
import { makeRng } from '../cpu/random.js';
import { randn, tensor, toArray } from '../tensor/creation.js';
import { scope } from '../tensor/scope.js';
import { checkCompatible, latestCheckpoint, readCheckpoint, restoreInto } from './checkpoint.js';
import { fingerprint, modelShape, parseConfig, type RunConfig } from './config.js';
import { buildDecoder, buildDiT, ditConfig, type EncoderInfo, loadEncoder } from './context.js';
import { ensureLatentStats, type LatentStats } from './latent-stats.js';
import { denormalizeImages, latentToTokens } from './rae.js';
import { readJson, RunError, type RunInfo } from './run-folder.js';
import { ditShape, latentAlpha } from './stage2.js';

export interface SampleOptions {
  runDir: string;
  config: RunConfig;
  /** A DiT checkpoint folder; default the run's latest. */
  checkpoint?: string;
  tag?: string;
  seed?: number;
  quiet?: boolean;
  enc?: EncoderInfo;
  /** Reuse models already in memory (the demo); otherwise loaded from checkpoints. */
  decoder?: RAEDecoder;
  model?: DiT | DiTDH;
  stats?: LatentStats;
}

export interface SampleResult {
  dir: string;
  count: number;
  seconds: number;
  imagesPerSecond: number;
}

/** Class-balanced labels: each class ⌊n/K⌋ or ⌈n/K⌉ times, in a seeded order. */
export function balancedLabels(n: number, numClasses: number, seed: number): Int32Array {
  const labels = Int32Array.from({ length: n }, (_, i) => i % numClasses);
  const rng = makeRng(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [labels[i], labels[j]] = [labels[j], labels[i]];
  }
  return labels;
}

function classCount(runDir: string): { count: number; names: string[] } {
  const info = readJson<RunInfo>(path.join(runDir, 'run.json'));
  const names = info?.data?.classes;
  if (!names?.length) throw new RunError(`${runDir}/run.json does not name the data's classes: train the run first`);
  return { count: names.length, names };
}

function withoutFingerprint(v: unknown): unknown {
  if (!v || typeof v !== 'object') return v;
  const { fingerprint: _, ...rest } = v as Record<string, unknown>;
  return rest;
}

/** A DiT from a checkpoint folder, built from the config.json of the run that holds it. */
function loadDiTCheckpoint(dir: string, fallback: RunConfig, enc: EncoderInfo, numClasses: number, useEma: boolean): DiT | DiTDH {
  const ck = readCheckpoint(dir, { optim: false });
  const ownRun = path.resolve(dir, '..', '..');
  const cfgFile = path.join(ownRun, 'config.json');
  const cfg = fs.existsSync(cfgFile) ? parseConfig(withoutFingerprint(readJson(cfgFile)), cfgFile) : fallback;
  const shape = ditShape(cfg, numClasses);
  checkCompatible(ck, 'dit', fingerprint(shape), shape);
  const model = buildDiT(cfg, ditConfig(cfg, enc, numClasses), cfg.dit.kind);
  restoreInto(ck, model, { useEma });
  return model.eval();
}

export async function sampleRun(o: SampleOptions): Promise<SampleResult & { step: number }> {
  const c = o.config;
  const s = c.sample;
  const t0 = performance.now();
  const enc = o.enc ?? (await loadEncoder(o.runDir, c));
  const { count: K, names } = classCount(o.runDir);
  const S = c.data.imageSize;

  let step = -1;
  let model = o.model;
  if (!model) {
    const dir = o.checkpoint ?? latestCheckpoint(o.runDir, 'dit');
    if (!dir) throw new RunError(`${o.runDir} has no DiT checkpoint: run 'rae train-dit --run ${o.runDir}' first`);
    model = loadDiTCheckpoint(dir, c, enc, K, s.useEma);
    step = readCheckpoint(dir, { optim: false }).state.step;
  }
  let decoder = o.decoder;
  if (!decoder) {
    const dir = latestCheckpoint(o.runDir, 'decoder');
    if (!dir) throw new RunError(`${o.runDir} has no decoder checkpoint: run 'rae train-decoder --run ${o.runDir}' first`);
    const ck = readCheckpoint(dir, { optim: false });
    const shape = modelShape(c, 'decoder');
    checkCompatible(ck, 'decoder', fingerprint(shape), shape);
    decoder = buildDecoder(c, enc);
    restoreInto(ck, decoder, { useEma: s.useEma });
    decoder.eval();
  }
  const stats = o.stats ?? (await ensureLatentStats(o.runDir, enc, undefined, 1));
  let guideModel: DiT | DiTDH | undefined;
  if (s.guidance === 'auto') {
    if (!s.guide)
      throw new RunError('--guidance auto needs --guide CHECKPOINT_DIR (e.g. DIR/checkpoints/dit-00000050, an earlier, weaker model)');
    if (!fs.existsSync(path.join(s.guide, 'state.json'))) throw new RunError(`--guide ${s.guide}: not a checkpoint folder (no state.json)`);
    guideModel = loadDiTCheckpoint(s.guide, c, enc, K, s.useEma);
  }

  const alpha = latentAlpha(c, enc.dim, enc.grid);
  const grid = samplerGrid(s.steps + 1, alpha);
  const seed = o.seed ?? c.seed;
  const labels = balancedLabels(s.count, K, seed + 17);
  const main = model;
  const images = new Uint8Array(s.count * 3 * S * S);
  const chunk = 32;
  for (let start = 0; start < s.count; start += chunk) {
    const n = Math.min(chunk, s.count - start);
    const y = tensor(labels.subarray(start, start + n), [n], { dtype: 'i32' });
    const plain: VelocityFn = (x, t) => main.forward(x, t, y);
    const velocity: VelocityFn =
      s.guidance === 'cfg'
        ? (x, t) => main.forwardWithCfg(x, t, y, s.scale, s.interval)
        : s.guidance === 'auto'
          ? autoGuidanceVelocity(plain, (x, t) => guideModel!.forward(x, t, y), { scale: s.scale, interval: s.interval })
          : plain;
    const noise = randn([n, enc.dim, enc.grid, enc.grid], { seed, stream: start / chunk });
    const z = await (s.sampler === 'heun' ? heunSample : eulerSample)(velocity, noise, grid);
    const img = noGrad(() =>
      scope(() => {
        const raw = ops.add(ops.mul(z, stats.std), stats.mean);
        return ops.clamp(denormalizeImages(decoder!.unpatchify(decoder!.forward(latentToTokens(raw)))), 0, 1);
      }),
    );
    z.dispose();
    const host = await toArray(img);
    // As the reference: ·255 then truncate to uint8.
    for (let i = 0; i < host.length; i++) images[start * 3 * S * S + i] = Math.floor(host[i] * 255);
    for (const t of [y, noise, img]) t.dispose();
  }

  const tag =
    o.tag ??
    `${step >= 0 ? `dit-${String(step).padStart(8, '0')}` : 'latest'}-${s.sampler}-${s.guidance === 'none' ? 'plain' : `${s.guidance}${s.scale}`}`;
  const dir = path.join(o.runDir, 'samples', tag);
  fs.mkdirSync(dir, { recursive: true });
  const asFloat = Float32Array.from(images, (v) => v / 255);
  const per = 3 * S * S;
  writePng(path.join(dir, 'grid.png'), imageGrid(asFloat, s.count, S, S, Math.min(s.count, K)));
  for (let k = 0; k < K; k++) {
    const idx = [...labels.keys()].filter((i) => labels[i] === k);
    if (!idx.length) continue;
    const sub = new Float32Array(idx.length * per);
    idx.forEach((i, j) => sub.set(asFloat.subarray(i * per, (i + 1) * per), j * per));
    writePng(path.join(dir, `class-${k}.png`), imageGrid(sub, idx.length, S, S, idx.length));
  }
  saveSafetensors(path.join(dir, 'samples.safetensors'), {
    images: { shape: [s.count, 3, S, S], data: images },
    labels: { shape: [s.count], data: labels },
  });
  const seconds = (performance.now() - t0) / 1000;
  const meta = {
    tag,
    step,
    sampler: s.sampler,
    steps: s.steps,
    guidance: { kind: s.guidance, scale: s.scale, interval: s.interval, ...(s.guidance === 'auto' ? { guide: s.guide } : {}) },
    classes: names,
    count: s.count,
    weights: s.useEma ? 'ema' : 'raw',
    seed,
    seconds,
  };
  fs.writeFileSync(path.join(dir, 'samples.json'), `${JSON.stringify(meta, null, 2)}\n`);
  if (!o.model) model.dispose();
  if (!o.decoder) decoder.dispose();
  guideModel?.dispose();
  if (!o.stats) {
    stats.mean.dispose();
    stats.std.dispose();
  }
  return { dir, count: s.count, seconds, imagesPerSecond: s.count / seconds, step };
}
