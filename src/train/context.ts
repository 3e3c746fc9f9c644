/**
 * What every command of a run shares: the frozen encoder (a DINOv2 snapshot or an MAE of our own
 * from --encoder, or a random DINOv2-with-registers saved once in the run folder so later commands
 * use the same one), the
 * data set, and builders for the decoder and the DiT from the configuration.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as ops from '../autograd/ops/index.js';
import { noGrad } from '../autograd/tape.js';
import { loadSafetensors, saveSafetensors } from '../io/safetensors.js';
import { Dinov2, Dinov2WithRegisters, type Dinov2Config, IMAGENET_MEAN, IMAGENET_STD } from '../models/dinov2.js';
import { MaeEncoder } from '../models/mae.js';
import type { Module } from '../nn/module.js';
import { DiT, DiTDH, type DiTConfig } from '../models/dit.js';
import { loadDinov2 } from '../io/pretrained.js';
import { RAEDecoder } from '../models/rae-decoder.js';
import { manualSeed, toArray } from '../tensor/creation.js';
import { scope } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import type { RunConfig } from './config.js';
import { type ImageDataset, openDataset } from './data/index.js';
import { MAE_ENCODER_DIR, type MaeEncoderFile } from './mae-files.js';
import { normalizeImages } from './rae.js';
import { RunError, updateRunInfo } from './run-folder.js';

/**
 * A frozen encoder as the RAE commands use it: latent tokens [B, N, D] (N = grid²) from images
 * already resized to `inputSize` and normalised with `mean`/`std`.
 */
export interface FrozenEncoder extends Module {
  latent(pixels: Tensor): Tensor;
}

export type EncoderKind = 'dinov2' | 'mae' | 'random-dinov2';

export interface EncoderInfo {
  kind: EncoderKind;
  encoder: FrozenEncoder;
  note: string;
  inputSize: number;
  /** Tokens per side and token dimension of the latent. */
  grid: number;
  dim: number;
  /** The encoder's own sequence: tokens (latent + prefix tokens) and attention heads (memory estimates). */
  tokens: number;
  heads: number;
  /** Per-channel input normalisation (ImageNet's for every kind supported so far). */
  mean: readonly number[];
  std: readonly number[];
  /** What identifies the weights beyond the configuration (an MAE's export time), for caches. */
  identity?: string;
}

export interface LoadEncoderOptions {
  /** Build the same architecture with seeded random weights instead of loading them (linear-probe baseline). */
  randomInit?: boolean;
}

function randomEncoderConfig(c: RunConfig): Dinov2Config {
  const e = c.encoder;
  if (e.hidden % e.heads) throw new RunError(`encoder.hidden ${e.hidden} is not divisible by encoder.heads ${e.heads}`);
  if (e.inputSize % e.patch) throw new RunError(`encoder.inputSize ${e.inputSize} is not a multiple of encoder.patch ${e.patch}`);
  return {
    hidden_size: e.hidden,
    num_hidden_layers: e.layers,
    num_attention_heads: e.heads,
    intermediate_size: 4 * e.hidden,
    patch_size: e.patch,
    image_size: e.inputSize,
    num_register_tokens: e.registers,
    layer_norm_eps: 1e-6,
    layerscale_value: 1.0,
  };
}

const encoderSeed = (c: RunConfig) => c.seed + 0x0e0c;

/**
 * The frozen encoder of a run: `--encoder DIR` names a DINOv2 snapshot, an MAE run folder of
 * `rae pretrain-encoder` or its encoder/ subfolder; without it, a random DINOv2-with-registers is
 * created once and saved as DIR/encoder.safetensors. With `randomInit`, the same architecture is
 * built with seeded random weights and nothing is read or written but the architecture's config.
 */
export async function loadEncoder(runDir: string, c: RunConfig, opts: LoadEncoderOptions = {}): Promise<EncoderInfo> {
  const random = Boolean(opts.randomInit);
  const info = c.encoder.path ? loadEncoderFolder(c, random) : await randomDinov2(runDir, c, random);
  info.encoder.eval().requiresGrad_(false);
  if (info.inputSize % (info.inputSize / info.grid))
    throw new RunError(`encoder input ${info.inputSize} is not a multiple of its patch ${info.inputSize / info.grid}`);
  return info;
}

async function randomDinov2(runDir: string, c: RunConfig, randomInit: boolean): Promise<EncoderInfo> {
  const file = path.join(runDir, 'encoder.safetensors');
  manualSeed(encoderSeed(c));
  const encoder = Dinov2WithRegisters.fromConfig(randomEncoderConfig(c));
  if (!randomInit) {
    if (fs.existsSync(file)) {
      encoder.loadStateDict(loadSafetensors(file) as Map<string, { shape: number[]; data: Float32Array }>, { strict: false });
    } else {
      await saveEncoder(file, encoder.namedParameters());
    }
  }
  return dinov2Info(
    'random-dinov2',
    encoder,
    c.encoder.inputSize,
    `randomly initialised DINOv2-with-registers (hidden ${c.encoder.hidden}, ${c.encoder.layers} layers, patch ${c.encoder.patch}): no pretrained weights are available offline`,
  );
}

function dinov2Info(kind: EncoderKind, encoder: Dinov2, inputSize: number, note: string): EncoderInfo {
  const cfg = encoder.config;
  const patch = cfg.patch_size;
  if (inputSize % patch) throw new RunError(`encoder input ${inputSize} is not a multiple of its patch ${patch}`);
  const grid = inputSize / patch;
  return {
    kind,
    encoder,
    note,
    inputSize,
    grid,
    dim: cfg.hidden_size,
    tokens: grid * grid + encoder.numPrefixTokens,
    heads: cfg.num_attention_heads,
    mean: IMAGENET_MEAN,
    std: IMAGENET_STD,
  };
}

const EXPECTED =
  'expected a local Hugging Face snapshot of facebook/dinov2-with-registers-* (config.json + model.safetensors) or an MAE run folder of `rae pretrain-encoder` (DIR/encoder/config.json + model.safetensors)';

function readJsonFile(file: string): Record<string, unknown> {
  try {
    const v = JSON.parse(fs.readFileSync(file, 'utf8'));
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch (e) {
    throw new RunError(`${file}: not valid JSON (${e instanceof Error ? e.message : e})`);
  }
  throw new RunError(`${file}: not a JSON object`);
}

/** What an --encoder folder holds, from its contents. */
export function detectEncoderFolder(dir: string): { kind: 'dinov2' | 'mae'; dir: string } {
  if (!fs.existsSync(dir)) throw new RunError(`--encoder ${dir}: no such folder (${EXPECTED})`);
  if (!fs.statSync(dir).isDirectory()) throw new RunError(`--encoder ${dir}: not a folder (${EXPECTED})`);
  const sub = path.join(dir, MAE_ENCODER_DIR, 'config.json');
  if (fs.existsSync(sub) && readJsonFile(sub).model_type === 'mae-vit') return { kind: 'mae', dir: path.join(dir, MAE_ENCODER_DIR) };
  const own = path.join(dir, 'config.json');
  if (fs.existsSync(own)) {
    const j = readJsonFile(own);
    if (j.model_type === 'mae-vit') return { kind: 'mae', dir };
    if (typeof j.model_type === 'string' && j.model_type.startsWith('dinov2')) return { kind: 'dinov2', dir };
    if ('mae' in j && 'preset' in j)
      throw new RunError(
        `--encoder ${dir}: an MAE run folder whose pretraining has not finished (no ${MAE_ENCODER_DIR}/config.json yet); finish it with: rae pretrain-encoder --run ${dir} --resume`,
      );
    throw new RunError(`--encoder ${dir}: config.json has model_type ${JSON.stringify(j.model_type)} (${EXPECTED})`);
  }
  throw new RunError(`--encoder ${dir}: neither config.json nor ${MAE_ENCODER_DIR}/config.json found (${EXPECTED})`);
}

function loadEncoderFolder(c: RunConfig, randomInit: boolean): EncoderInfo {
  const found = detectEncoderFolder(c.encoder.path);
  if (found.kind === 'dinov2') {
    let encoder: Dinov2;
    if (randomInit) {
      const cfg = readJsonFile(path.join(found.dir, 'config.json')) as unknown as Dinov2Config;
      manualSeed(encoderSeed(c));
      encoder = cfg.num_register_tokens ? Dinov2WithRegisters.fromConfig(cfg) : Dinov2.fromConfig(cfg);
    } else encoder = loadDinov2(found.dir);
    const inputSize = c.encoder.inputSize === c.data.imageSize ? 224 : c.encoder.inputSize;
    const what = randomInit ? 'randomly initialised DINOv2 with the architecture of' : 'pretrained DINOv2 from';
    return dinov2Info('dinov2', encoder, inputSize, `${what} ${c.encoder.path}`);
  }
  return loadMae(found.dir, c, randomInit);
}

function loadMae(dir: string, c: RunConfig, randomInit: boolean): EncoderInfo {
  const cfgFile = path.join(dir, 'config.json');
  const cfg = readJsonFile(cfgFile) as unknown as MaeEncoderFile;
  const same = (a: unknown, b: readonly number[]) => Array.isArray(a) && a.length === 3 && a.every((v, i) => Math.abs(v - b[i]) < 1e-9);
  if (!same(cfg.image_mean, IMAGENET_MEAN) || !same(cfg.image_std, IMAGENET_STD))
    throw new RunError(
      `${cfgFile}: image_mean/image_std ${JSON.stringify(cfg.image_mean)}/${JSON.stringify(cfg.image_std)} — only ImageNet normalisation is supported (the decoder de-normalises with it)`,
    );
  let encoder: MaeEncoder;
  try {
    manualSeed(encoderSeed(c));
    encoder = new MaeEncoder(cfg);
  } catch (e) {
    throw new RunError(`${cfgFile}: ${e instanceof Error ? e.message : e}`);
  }
  const weights = path.join(dir, 'model.safetensors');
  let identity: string | undefined;
  if (!randomInit) {
    if (!fs.existsSync(weights)) throw new RunError(`${dir}: model.safetensors is missing (${EXPECTED})`);
    try {
      encoder.loadStateDict(loadSafetensors(weights) as Map<string, { shape: number[]; data: Float32Array }>);
    } catch (e) {
      throw new RunError(`${weights}: ${e instanceof Error ? e.message : e}`);
    }
    const st = fs.statSync(weights);
    identity = `${st.size}:${st.mtimeMs}`;
  }
  const grid = encoder.grid;
  const steps = cfg.pretraining?.steps;
  return {
    kind: 'mae',
    encoder,
    note: `${randomInit ? 'randomly initialised' : `MAE-pretrained${steps ? ` (${steps} steps)` : ''}`} ViT (hidden ${cfg.hidden_size}, ${cfg.num_hidden_layers} layers, patch ${cfg.patch_size}) from ${dir}`,
    inputSize: cfg.image_size,
    grid,
    dim: cfg.hidden_size,
    tokens: grid * grid + 1,
    heads: cfg.num_attention_heads,
    mean: IMAGENET_MEAN,
    std: IMAGENET_STD,
    identity,
  };
}

async function saveEncoder(file: string, named: [string, Tensor][]): Promise<void> {
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [k, t] of named) tensors.set(k, { shape: [...t.shape], data: (await toArray(t)) as Float32Array });
  saveSafetensors(file, tensors);
}

/** Images [B, 3, S, S] in [0, 1] → latent tokens [B, N, D] from the frozen encoder. */
export function encodeBatch(info: EncoderInfo, images: Tensor): Tensor {
  return noGrad(() =>
    scope(() => {
      const S = images.shape[2];
      const x = S === info.inputSize ? images : ops.interpolate(images, [info.inputSize, info.inputSize], { mode: 'bicubic' });
      return info.encoder.latent(normalizeImages(x));
    }),
  );
}

export function buildDecoder(c: RunConfig, enc: EncoderInfo): RAEDecoder {
  const S = c.data.imageSize;
  if (S % enc.grid)
    throw new RunError(`image size ${S} is not a multiple of the latent grid ${enc.grid} (--image-size or the encoder's patch)`);
  if (c.decoder.hidden % c.decoder.heads)
    throw new RunError(`decoder.hidden ${c.decoder.hidden} is not divisible by decoder.heads ${c.decoder.heads}`);
  manualSeed(c.seed + 0xdec);
  return RAEDecoder.fromConfig({
    hidden_size: enc.dim,
    decoder_hidden_size: c.decoder.hidden,
    decoder_num_hidden_layers: c.decoder.layers,
    decoder_num_attention_heads: c.decoder.heads,
    decoder_intermediate_size: c.decoder.mlp,
    patch_size: S / enc.grid,
    num_channels: 3,
    layer_norm_eps: 1e-12,
    num_patches: enc.grid * enc.grid,
  });
}

export function ditConfig(c: RunConfig, enc: EncoderInfo, numClasses: number): DiTConfig {
  const d = c.dit;
  const dh = d.kind === 'ditdh';
  const pick = (v: number[], name: string) => {
    if (dh && v.length !== 2) throw new RunError(`dit.${name} must give [body, head] for a DiT^DH, got ${JSON.stringify(v)}`);
    return dh ? v : v[0];
  };
  return {
    input_size: enc.grid,
    patch_size: 1,
    in_channels: enc.dim,
    hidden_size: pick(d.hidden, 'hidden'),
    depth: pick(d.depth, 'depth'),
    num_heads: pick(d.heads, 'heads'),
    mlp_ratio: d.mlpRatio,
    num_classes: numClasses,
    class_dropout_prob: d.labelDropout,
    use_swiglu: true,
    use_rmsnorm: true,
    use_rope: true,
    use_qknorm: false,
  };
}

export function buildDiT(c: RunConfig, cfg: DiTConfig, kind: 'dit' | 'ditdh', seedOffset = 0xd17): DiT | DiTDH {
  manualSeed(c.seed + seedOffset);
  try {
    return kind === 'ditdh'
      ? DiTDH.fromConfig(cfg, { allowNarrow: c.dit.allowNarrow })
      : DiT.fromConfig(cfg, { allowNarrow: c.dit.allowNarrow });
  } catch (e) {
    if (e instanceof RangeError) throw new RunError(e.message.replace('pass allowNarrow (--allow-narrow)', 'pass --allow-narrow'));
    throw e;
  }
}

export interface RunData {
  train: ImageDataset;
  heldOut: ImageDataset;
}

export async function loadData(runDir: string, c: RunConfig): Promise<RunData> {
  if (!c.data.source)
    throw new RunError('no data: give --data PATH (an image folder, a .tar.gz of one, CIFAR-10 binary batches or MNIST IDX files)');
  const { train, heldOut } = await openDataset({
    source: c.data.source,
    format: c.data.format,
    imageSize: c.data.imageSize,
    split: 'train',
    heldOut: c.data.heldOut,
    maxImages: c.data.maxImages,
    skipBad: c.data.skipBad,
    seed: c.seed,
  });
  if (train.size === 0) throw new RunError(`${c.data.source}: no training images`);
  updateRunInfo(runDir, (info) => {
    info.data = {
      name: train.name,
      source: c.data.source,
      train: train.size,
      heldOut: heldOut.size,
      skipped: train.skipped.length + heldOut.skipped.length,
      classes: train.classes,
    };
  });
  return { train, heldOut };
}
