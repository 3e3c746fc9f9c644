/** The exported MAE encoder folder (DIR/encoder/): what `rae pretrain-encoder` writes and `--encoder` reads. */
import fs from 'node:fs';
import path from 'node:path';
import { saveSafetensors } from '../io/safetensors.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../models/dinov2.js';
import type { MaeConfig, MaskedAutoencoder } from '../models/mae.js';
import { toArray } from '../tensor/creation.js';
import type { RunConfig } from './config.js';
import { writeFileAtomic } from './run-folder.js';

export const MAE_ENCODER_DIR = 'encoder';

/** Everything `loadEncoder` needs to use the encoder: architecture, input, normalisation, token layout. */
export interface MaeEncoderFile extends MaeConfig {
  image_mean: number[];
  image_std: number[];
  latent: { drop_prefix_tokens: number; grid: number; dim: number; description: string };
  pretraining: { steps: number; seconds?: number; data: string };
}

export /** Writes DIR/encoder/{model.safetensors, config.json}; config.json last, so its presence marks a complete export. */
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
