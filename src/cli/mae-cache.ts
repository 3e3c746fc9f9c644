/**
 * The demo's encoder: an MAE pretrained once per pretraining configuration in a cache folder
 * (encoders/mae-<preset>-<fingerprint>/ next to the run folder, so runs/encoders/ for the default
 * runs/demo-<time>; an ordinary `rae pretrain-encoder` run folder) and reused by
 * later demos once its export is complete. An interrupted pretraining is resumed. Never committed
 * (runs/ is ignored by git).
 */
import fs from 'node:fs';
import path from 'node:path';
import { latestCheckpoint } from '../train/checkpoint.js';
import { fingerprint, type RunConfig } from '../train/config.js';
import { MAE_ENCODER_DIR } from '../train/mae-files.js';
import { pretrainMaeStage } from '../train/mae-stage.js';
import type { LoopResult } from '../train/loop.js';
import { acquireLock } from '../train/run-folder.js';
import { writeConfig } from './options.js';

/** Everything that changes the pretrained weights. */
export function maeCacheKey(c: RunConfig): string {
  const { source, format, imageSize, maxImages, heldOut, flip } = c.data;
  const { logEvery, checkpointEvery, keep, ...training } = c.mae;
  return fingerprint({ mae: training, data: { source: path.resolve(source), format, imageSize, maxImages, heldOut, flip }, seed: c.seed });
}

export function maeCacheDir(c: RunConfig, root = path.join('runs', 'encoders')): string {
  return path.join(root, `mae-${c.preset}-${maeCacheKey(c)}`);
}

/** The cached MAE run folder for this configuration, pretraining (or finishing) it first if needed; `result` when it trained. */
export async function ensureCachedMae(
  c: RunConfig,
  opts: { root?: string; quiet?: boolean } = {},
): Promise<{ dir: string; reused: boolean; result?: LoopResult }> {
  const dir = maeCacheDir(c, opts.root);
  if (fs.existsSync(path.join(dir, MAE_ENCODER_DIR, 'config.json'))) return { dir, reused: true };
  fs.mkdirSync(dir, { recursive: true });
  const release = acquireLock(dir, 'rae demo (MAE pretraining)');
  try {
    writeConfig(dir, c);
    const resume = latestCheckpoint(dir, 'mae') !== undefined;
    const result = await pretrainMaeStage({ runDir: dir, config: c, resume, quiet: opts.quiet });
    return { dir, reused: false, result };
  } finally {
    release();
  }
}
