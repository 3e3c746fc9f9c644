/**
 * Reference statistics (mean and covariance of a data set's features) cached on disk, so a
 * data set's FID reference is computed once per data set and feature network.
 *
 * Format: a safetensors file with `mu` (F64 [d]) and `sigma` (F64 [d, d]), and in its metadata
 * `rae.stats.key`: the JSON of the key (data set, image count, feature network, SHA-256 of its
 * weights) and `rae.stats.format`: "1". The file name carries a hash of the key, so statistics
 * of another data set or network are never picked up by mistake; a file whose stored key
 * disagrees with its name (renamed, copied by hand) is an error, not a silent reuse.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { openSafetensors, saveSafetensors } from '../io/index.js';
import type { GaussianStats } from './feature-stats.js';

export interface StatsKey {
  /** What the statistics describe: a data set name or path, and its split. */
  dataset: string;
  imageCount: number;
  /** e.g. "nsfwjs-inception-v3 mixed10 avg 2048 @299 bilinear". */
  featureNetwork: string;
  weightsSha256: string;
}

const KEY_FIELD = 'rae.stats.key';
const FORMAT_FIELD = 'rae.stats.format';
const FORMAT = '1';

export class StatsCacheError extends Error {
  constructor(file: string, problem: string) {
    super(`${file}: ${problem}`);
    this.name = 'StatsCacheError';
  }
}

/** The key as canonical JSON (fixed field order), so equal keys give equal text and hashes. */
export function canonicalKey(key: StatsKey): string {
  return JSON.stringify({
    dataset: key.dataset,
    imageCount: key.imageCount,
    featureNetwork: key.featureNetwork,
    weightsSha256: key.weightsSha256,
  });
}

/** `dir/<data set, filename-safe>-<first 16 hex of sha256(key)>.stats.safetensors`. */
export function statsCachePath(dir: string, key: StatsKey): string {
  const readable =
    path
      .basename(key.dataset)
      .replace(/[^A-Za-z0-9._-]+/g, '_')
      .slice(0, 48) || 'dataset';
  const hash = createHash('sha256').update(canonicalKey(key)).digest('hex').slice(0, 16);
  return path.join(dir, `${readable}-${hash}.stats.safetensors`);
}

export function saveReferenceStats(file: string, key: StatsKey, stats: GaussianStats): void {
  if (stats.count !== key.imageCount)
    throw new StatsCacheError(file, `statistics of ${stats.count} samples saved under a key saying ${key.imageCount} images`);
  saveSafetensors(
    file,
    { mu: { dtype: 'F64', shape: [stats.dim], data: stats.mu }, sigma: { dtype: 'F64', shape: [stats.dim, stats.dim], data: stats.sigma } },
    { [KEY_FIELD]: canonicalKey(key), [FORMAT_FIELD]: FORMAT },
  );
}

/** The cached statistics for `key`, or undefined when the file does not exist. */
export function loadReferenceStats(file: string, key: StatsKey): GaussianStats | undefined {
  if (!existsSync(file)) return undefined;
  const st = openSafetensors(file);
  try {
    const fail = (problem: string): never => {
      throw new StatsCacheError(file, `${problem}; delete the file to recompute the statistics`);
    };
    if (st.metadata[FORMAT_FIELD] !== FORMAT)
      fail(`not a statistics cache of format ${FORMAT} (metadata ${FORMAT_FIELD} is ${JSON.stringify(st.metadata[FORMAT_FIELD])})`);
    const stored = st.metadata[KEY_FIELD];
    if (stored !== canonicalKey(key)) fail(`cached for ${stored ?? 'an unknown key'}, but asked for ${canonicalKey(key)}`);
    const read64 = (name: string, shape: number[]): Float64Array => {
      if (!st.has(name)) fail(`no tensor ${name}`);
      const info = st.info(name);
      if (info.dtype !== 'F64' || info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
        fail(`tensor ${name} is ${info.dtype} [${info.shape.join(', ')}], expected F64 [${shape.join(', ')}]`);
      }
      const raw = st.readRaw(name);
      // Copy into a fresh buffer: the raw bytes need not be 8-byte aligned.
      const out = new Float64Array(raw.byteLength / 8);
      new Uint8Array(out.buffer).set(raw);
      const bad = out.findIndex((v) => !Number.isFinite(v));
      if (bad >= 0) fail(`tensor ${name} has a non-finite value (${out[bad]}) at index ${bad}`);
      return out;
    };
    if (!st.has('mu')) fail('no tensor mu');
    const dim = st.info('mu').shape[0];
    const mu = read64('mu', [dim]);
    const sigma = read64('sigma', [dim, dim]);
    return { dim, count: key.imageCount, mu, sigma };
  } finally {
    st.close();
  }
}

/**
 * Reference *features* (rows × dim, F32), cached like the statistics and under the same key:
 * KID and precision/recall need the samples themselves, and below the feature size the FID is
 * cheapest from them too (fid-samples.ts). `dir/<name>-<hash>.features.safetensors`.
 */
export function featuresCachePath(dir: string, key: StatsKey): string {
  return statsCachePath(dir, key).replace(/\.stats\.safetensors$/, '.features.safetensors');
}

export function saveReferenceFeatures(file: string, key: StatsKey, features: { count: number; dim: number; data: Float32Array }): void {
  if (features.count !== key.imageCount)
    throw new StatsCacheError(file, `features of ${features.count} images saved under a key saying ${key.imageCount} images`);
  mkdirSync(path.dirname(file), { recursive: true });
  saveSafetensors(
    file,
    { features: { dtype: 'F32', shape: [features.count, features.dim], data: features.data } },
    { [KEY_FIELD]: canonicalKey(key), [FORMAT_FIELD]: FORMAT },
  );
}

/** The cached features for `key`, or undefined when the file does not exist. */
export function loadReferenceFeatures(file: string, key: StatsKey): { count: number; dim: number; data: Float32Array } | undefined {
  if (!existsSync(file)) return undefined;
  const st = openSafetensors(file);
  try {
    const fail = (problem: string): never => {
      throw new StatsCacheError(file, `${problem}; delete the file to recompute the features`);
    };
    if (st.metadata[FORMAT_FIELD] !== FORMAT) fail(`not a feature cache of format ${FORMAT}`);
    const stored = st.metadata[KEY_FIELD];
    if (stored !== canonicalKey(key)) fail(`cached for ${stored ?? 'an unknown key'}, but asked for ${canonicalKey(key)}`);
    if (!st.has('features')) fail('no tensor features');
    const info = st.info('features');
    if (info.dtype !== 'F32' || info.shape.length !== 2 || info.shape[0] !== key.imageCount)
      fail(`tensor features is ${info.dtype} [${info.shape.join(', ')}], expected F32 [${key.imageCount}, dim]`);
    const data = st.read('features').data as Float32Array;
    const bad = data.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) fail(`tensor features has a non-finite value (${data[bad]}) at index ${bad}`);
    return { count: info.shape[0], dim: info.shape[1], data };
  } finally {
    st.close();
  }
}
