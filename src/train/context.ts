/**
 * What every command of a run shares: the frozen encoder (pretrained from --encoder, or a random
 * DINOv2-with-registers saved once in the run folder so later commands use the same one), the
 * data set, and builders for the decoder and the DiT from the configuration.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as ops from '../autograd/ops/index.js';
import { noGrad } from '../autograd/tape.js';
import { loadSafetensors, saveSafetensors } from '../io/safetensors.js';
import { Dinov2, Dinov2WithRegisters, type Dinov2Config } from '../models/dinov2.js';
import { DiT, DiTDH, type DiTConfig } from '../models/dit.js';
import { loadDinov2 } from '../io/pretrained.js';
import { RAEDecoder } from '../models/rae-decoder.js';
import { manualSeed, toArray } from '../tensor/creation.js';
import { scope } from '../tensor/scope.js';
import type { Tensor } from '../tensor/tensor.js';
import type { RunConfig } from './config.js';
import { type ImageDataset, openDataset } from './data/index.js';
import { normalizeImages } from './rae.js';
import { RunError, updateRunInfo } from './run-folder.js';

export interface EncoderInfo {
  encoder: Dinov2;
  note: string;
  inputSize: number;
  /** Tokens per side and token dimension of the latent. */
  grid: number;
  dim: number;
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

/**
 * The frozen encoder of a run. A random one is created once and saved as DIR/encoder.safetensors.
 * `randomInit` gives the same architecture at a seeded random initialisation instead (the linear
 * probe's baseline): nothing is loaded, nothing is saved.
 */
export async function loadEncoder(runDir: string, c: RunConfig, opts: { randomInit?: boolean } = {}): Promise<EncoderInfo> {
  let encoder: Dinov2;
  let note: string;
  let inputSize = c.encoder.inputSize;
  if (c.encoder.path) {
    if (!fs.existsSync(c.encoder.path))
      throw new RunError(
        `--encoder ${c.encoder.path}: no such folder (expected a local Hugging Face snapshot of facebook/dinov2-with-registers-*)`,
      );
    encoder = opts.randomInit ? randomLikeSnapshot(c.encoder.path, c.seed) : loadDinov2(c.encoder.path);
    note = `${opts.randomInit ? 'randomly initialised architecture of' : 'pretrained'} DINOv2 from ${c.encoder.path}`;
    inputSize = c.encoder.inputSize === c.data.imageSize ? 224 : c.encoder.inputSize;
  } else {
    const file = path.join(runDir, 'encoder.safetensors');
    manualSeed(c.seed + 0x0e0c);
    encoder = Dinov2WithRegisters.fromConfig(randomEncoderConfig(c));
    const named = encoder.namedParameters();
    if (opts.randomInit) {
      // The seeded initialisation itself: the run's saved encoder (if any) is not consulted.
    } else if (fs.existsSync(file)) {
      encoder.loadStateDict(loadSafetensors(file) as Map<string, { shape: number[]; data: Float32Array }>, { strict: false });
    } else {
      await saveEncoder(file, named);
    }
    note = `randomly initialised DINOv2-with-registers (hidden ${c.encoder.hidden}, ${c.encoder.layers} layers, patch ${c.encoder.patch}): no pretrained weights are available offline`;
  }
  encoder.eval().requiresGrad_(false);
  const patch = encoder.config.patch_size;
  if (inputSize % patch) throw new RunError(`encoder input ${inputSize} is not a multiple of its patch ${patch}`);
  return { encoder, note, inputSize, grid: inputSize / patch, dim: encoder.config.hidden_size };
}

/** A DINOv2 of a snapshot's config.json at a seeded random initialisation (its weights unread). */
function randomLikeSnapshot(dir: string, seed: number): Dinov2 {
  const file = path.join(dir, 'config.json');
  if (!fs.existsSync(file)) throw new RunError(`--encoder ${dir}: no config.json (expected a Hugging Face snapshot directory)`);
  let config: Dinov2Config;
  try {
    config = JSON.parse(fs.readFileSync(file, 'utf8')) as Dinov2Config;
  } catch (e) {
    throw new RunError(`${file} is not valid JSON: ${(e as Error).message}`);
  }
  manualSeed(seed + 0x0e0c);
  const registers = (config.num_register_tokens ?? 0) > 0 || config.model_type === 'dinov2_with_registers';
  return registers ? Dinov2WithRegisters.fromConfig(config) : Dinov2.fromConfig(config);
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
