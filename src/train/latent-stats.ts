/**
 * Per-element latent statistics (spec §1.3): mean and population variance of the [C, h, w]
 * latents over the training set, computed once by streaming batches through the frozen encoder
 * and combining them in float64 (Chan et al.'s parallel update, exact for any batch split), then
 * saved as DIR/latent-stats.safetensors and reused by training and sampling.
 */
import fs from 'node:fs';
import path from 'node:path';
import { loadSafetensors, saveSafetensors } from '../io/safetensors.js';
import { tensor, toArray } from '../tensor/creation.js';
import type { Tensor } from '../tensor/tensor.js';
import { type EncoderInfo, encodeBatch } from './context.js';
import { type ImageDataset, imagesToTensor } from './data/index.js';
import { tokensToLatent } from './rae.js';
import { RunError } from './run-folder.js';

/** Running mean / sum of squared deviations per element. */
export class RunningMoments {
  count = 0;
  readonly mean: Float64Array;
  readonly m2: Float64Array;
  constructor(readonly size: number) {
    this.mean = new Float64Array(size);
    this.m2 = new Float64Array(size);
  }

  /** Adds `n` samples laid out [n, size]. */
  add(x: ArrayLike<number>, n: number): void {
    if (x.length !== n * this.size) throw new RangeError(`RunningMoments.add: ${x.length} values are not ${n} × ${this.size}`);
    if (n === 0) return;
    const bMean = new Float64Array(this.size);
    const bM2 = new Float64Array(this.size);
    for (let i = 0; i < n; i++) for (let j = 0; j < this.size; j++) bMean[j] += x[i * this.size + j];
    for (let j = 0; j < this.size; j++) bMean[j] /= n;
    for (let i = 0; i < n; i++)
      for (let j = 0; j < this.size; j++) {
        const d = x[i * this.size + j] - bMean[j];
        bM2[j] += d * d;
      }
    const na = this.count;
    const total = na + n;
    for (let j = 0; j < this.size; j++) {
      const delta = bMean[j] - this.mean[j];
      this.mean[j] += (delta * n) / total;
      this.m2[j] += bM2[j] + (delta * delta * na * n) / total;
    }
    this.count = total;
  }

  variance(): Float64Array {
    return this.m2.map((v) => v / Math.max(1, this.count));
  }
}

export interface LatentStats {
  /** [1, C, h, w] */
  mean: Tensor;
  /** √(var + 1e-5), [1, C, h, w] */
  std: Tensor;
  count: number;
}

export const STATS_FILE = 'latent-stats.safetensors';
const EPS = 1e-5;

function toTensors(mean: Float32Array, variance: Float32Array, shape: number[], count: number): LatentStats {
  const std = Float32Array.from(variance, (v) => Math.sqrt(v + EPS));
  return { mean: tensor(mean, [1, ...shape]).keep(), std: tensor(std, [1, ...shape]).keep(), count };
}

/** Loads the run's statistics, or computes and saves them (streaming over `ds`). */
export async function ensureLatentStats(
  runDir: string,
  enc: EncoderInfo,
  ds: ImageDataset | undefined,
  batch: number,
  onProgress?: (done: number, total: number) => void,
): Promise<LatentStats> {
  const file = path.join(runDir, STATS_FILE);
  const shape = [enc.dim, enc.grid, enc.grid];
  if (fs.existsSync(file)) {
    const t = loadSafetensors(file);
    const mean = t.get('mean');
    const variance = t.get('var');
    const n = (t as unknown as Map<string, { data: Float32Array }>).get('count');
    if (!mean || !variance || mean.shape.join() !== shape.join() || variance.shape.join() !== shape.join()) {
      throw new RunError(`${file}: expected mean and var of shape [${shape}] (delete the file to recompute it)`);
    }
    return toTensors(mean.data as Float32Array, variance.data as Float32Array, shape, n ? Number(n.data[0]) : 0);
  }
  if (!ds) throw new RunError(`${file} is missing: run 'rae train-dit --run ${runDir}' first (it computes the latent statistics)`);
  const moments = new RunningMoments(shape[0] * shape[1] * shape[2]);
  for (let start = 0; start < ds.size; start += batch) {
    const n = Math.min(batch, ds.size - start);
    const bytes = await ds.read(Int32Array.from({ length: n }, (_, i) => start + i));
    const x = imagesToTensor(bytes, n, ds.imageSize);
    const tok = encodeBatch(enc, x);
    const z = tokensToLatent(tok, enc.grid);
    moments.add(await toArray(z), n);
    for (const t of [x, tok, z]) t.dispose();
    onProgress?.(start + n, ds.size);
  }
  const mean = Float32Array.from(moments.mean);
  const variance = Float32Array.from(moments.variance());
  saveSafetensors(
    file,
    { mean: { shape, data: mean }, var: { shape, data: variance }, count: { shape: [1], data: Float32Array.from([moments.count]) } },
    { images: String(moments.count), eps: String(EPS) },
  );
  return toTensors(mean, variance, shape, moments.count);
}
