/**
 * `evaluateRun(runDir)`: the quality figures of a training run, written to DIR/eval.json.
 *
 * - rFID (and KID, precision/recall): the decoder's reconstructions of held-out images (encoder →
 *   decoder, EMA weights of the latest decoder checkpoint) against those originals, plus their
 *   PSNR/SSIM;
 * - gFID, KID ± std, precision/recall: the run's samples (an existing samples/<tag> set with
 *   enough images, else N new ones drawn with the run's sampling settings) against evenly spaced
 *   images of the training set.
 *
 * Features of the originals and of the training reference depend only on the data set and the
 * feature network, so they are cached (stats-cache.ts, keyed by data source, split settings,
 * count and the network's weights hash); a second evaluation pays for reconstructions and samples
 * only. The GPU runtime must be initialised by the caller (the CLI, or `rae demo`).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ops from '../autograd/ops/index.js';
import { noGrad } from '../autograd/tape.js';
import { runtime } from '../gpu/runtime.js';
import { loadSafetensors } from '../io/safetensors.js';
import { toArray } from '../tensor/creation.js';
import { scope } from '../tensor/scope.js';
import { checkCompatible, latestCheckpoint, readCheckpoint, restoreInto } from '../train/checkpoint.js';
import { fingerprint, modelShape, parseConfig, type RunConfig } from '../train/config.js';
import { buildDecoder, encodeBatch, loadData, loadEncoder } from '../train/context.js';
import type { ImageDataset } from '../train/data/index.js';
import { imagesToTensor } from '../train/data/index.js';
import { psnr, ssim } from '../train/image-metrics.js';
import { denormalizeImages } from '../train/rae.js';
import { readJson, RunError } from '../train/run-folder.js';
import { sampleRun } from '../train/sample.js';
import { compareFeatureSets, type SetComparison } from './compare.js';
import { extractFeatures, FID_INCEPTION_NOTE, type FeatureNetwork, loadFeatureNetwork, NSFWJS_NOTE } from './extract.js';
import { featureSet, type FeatureSet } from './features.js';
import { imageSetFromChw } from './image-set.js';
import { featuresCachePath, loadReferenceFeatures, saveReferenceFeatures, type StatsKey } from './stats-cache.js';

export interface RunEvalOptions {
  /** Generated images for gFID (default 24 on a software adapter, 1000 on a GPU). */
  samples?: number;
  /** Held-out images reconstructed for rFID (default min(24 | 1000, held-out size)). */
  reconstructions?: number;
  /** Training images in the gFID reference (default 48 | 5000, at most the training set). */
  reference?: number;
  /** Images per Inception pass (default 8). */
  batch?: number;
  /** Standard FID Inception weights (safetensors); default nsfwjs's InceptionV3. */
  inception?: string;
  kidSubsets?: number;
  seed?: number;
  /** Where reference features are cached (default $RAE_CACHE_DIR or ~/.cache/rae-webgpu/eval). */
  cacheDir?: string;
  quiet?: boolean;
  log?: (line: string) => void;
  /** A feature network already loaded (the caller disposes it). */
  network?: FeatureNetwork;
}

export interface RunEvalResult {
  /** What DIR/eval.json holds. */
  json: RunEvalJson;
  warnings: string[];
  /** One line of figures for the terminal. */
  summary: string;
}

export interface RunEvalJson {
  rfid: number;
  gfid: number | null;
  kid: number | null;
  kidStd: number | null;
  precision: number | null;
  recall: number | null;
  psnr: number;
  ssim: number | null;
  counts: { reconstructions: number; samples: number; reference: number };
  reconstruction: SetComparison;
  generation: SetComparison | null;
  featureNetwork: string;
  weightsSha256: string;
  comparable: boolean;
  note: string;
  decoderCheckpoint: string;
  samplesTag: string | null;
  seconds: number;
  writtenAt: string;
  warnings: string[];
}

export const EVAL_FILE = 'eval.json';

/** Default counts depend on it: Inception costs seconds per image on a CPU adapter. */
const isSoftware = () => runtime().caps.software !== null;

function defaultCacheDir(): string {
  return process.env.RAE_CACHE_DIR ?? path.join(os.homedir(), '.cache', 'rae-webgpu', 'eval');
}

function readRunConfig(runDir: string): RunConfig {
  const file = path.join(runDir, 'config.json');
  const raw = readJson<Record<string, unknown>>(file);
  if (!raw) throw new RunError(`${runDir}: not a run folder (no readable config.json)`);
  const { fingerprint: _, ...rest } = raw;
  return parseConfig(rest, file);
}

/** Evenly spaced indices (the training set is ordered by class: the first n would be one class). */
function spread(n: number, size: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => Math.floor(((i + 0.5) * size) / n));
}

/** An existing sample set with at least n images (latest first), as u8 [n, 3, S, S]. */
function existingSamples(runDir: string, n: number, S: number): { tag: string; images: Uint8Array } | undefined {
  const dir = path.join(runDir, 'samples');
  if (!fs.existsSync(dir)) return undefined;
  const tags = fs
    .readdirSync(dir)
    .filter((t) => fs.existsSync(path.join(dir, t, 'samples.safetensors')))
    .sort(
      (a, b) =>
        fs.statSync(path.join(dir, b, 'samples.safetensors')).mtimeMs - fs.statSync(path.join(dir, a, 'samples.safetensors')).mtimeMs,
    );
  for (const tag of tags) {
    const t = loadSafetensors(path.join(dir, tag, 'samples.safetensors')).get('images');
    if (t?.shape.length !== 4 || t.shape[1] !== 3 || t.shape[2] !== S || t.shape[3] !== S || t.shape[0] < n) continue;
    return { tag, images: Uint8Array.from(t.data as ArrayLike<number>).subarray(0, n * 3 * S * S) };
  }
  return undefined;
}

export async function evaluateRun(runDir: string, opts: RunEvalOptions = {}): Promise<RunEvalResult> {
  const t0 = performance.now();
  const log = opts.log ?? ((l: string) => console.log(l));
  const say = (l: string) => !opts.quiet && log(l);
  const c = readRunConfig(runDir);
  const S = c.data.imageSize;
  const soft = isSoftware();
  const warnings: string[] = [];
  const decDir = latestCheckpoint(runDir, 'decoder');
  if (!decDir) throw new RunError(`${runDir} has no decoder checkpoint: run 'rae train-decoder --run ${runDir}' first`);
  const enc = await loadEncoder(runDir, c);
  const data = await loadData(runDir, c);
  const nRec = Math.min(opts.reconstructions ?? (soft ? 24 : 1000), data.heldOut.size);
  const nRef = Math.min(opts.reference ?? (soft ? 48 : 5000), data.train.size);
  const nGen = opts.samples ?? (soft ? 24 : 1000);
  if (nGen < 2 || nRef < 2)
    throw new RunError(
      `gFID needs at least 2 samples and 2 training images (precision/recall 4); asked for ${nGen} samples against ${nRef} of ${data.train.size} training images`,
    );
  if (nRec < 2)
    throw new RunError(
      `${runDir}: rFID needs at least 2 held-out images, the run holds out ${data.heldOut.size} (--held-out when training)`,
    );

  const net = opts.network ?? loadFeatureNetwork({ inception: opts.inception });
  const ext = { batch: opts.batch, quiet: opts.quiet, log };
  const cacheDir = opts.cacheDir ?? defaultCacheDir();
  const keyOf = (split: string, count: number): StatsKey => ({
    dataset: `${path.resolve(c.data.source)}|${split}|format=${c.data.format}|size=${S}|max=${c.data.maxImages}|heldOut=${c.data.heldOut}|seed=${c.seed}`,
    imageCount: count,
    featureNetwork: net.id,
    weightsSha256: net.weightsSha256,
  });
  /** Features of images of a data set, from the cache when there. */
  const cachedFeatures = async (set: ImageDataset, split: string, idx: Int32Array, label: string): Promise<FeatureSet> => {
    const key = keyOf(split, idx.length);
    const file = featuresCachePath(cacheDir, key);
    const hit = loadReferenceFeatures(file, key);
    if (hit) {
      say(`${label}: ${idx.length} images' features from the cache (${file})`);
      return featureSet(hit.data, hit.count, hit.dim);
    }
    const images = await set.read(idx);
    const f = await extractFeatures(imageSetFromChw(label, images, idx.length, S), net, { ...ext, label });
    saveReferenceFeatures(file, key, { count: f.count, dim: f.dim, data: f.data as Float32Array });
    return f;
  };

  try {
    // Reconstructions of held-out images.
    const ck = readCheckpoint(decDir, { optim: false });
    const shape = modelShape(c, 'decoder');
    checkCompatible(ck, 'decoder', fingerprint(shape), shape);
    const decoder = buildDecoder(c, enc);
    restoreInto(ck, decoder, { useEma: true });
    decoder.eval();
    const recIdx = Int32Array.from({ length: nRec }, (_, i) => i);
    const originals = await data.heldOut.read(recIdx);
    const recon = new Uint8Array(originals.length);
    const per = 3 * S * S;
    let psnrSum = 0;
    let ssimSum = 0;
    for (let at = 0; at < nRec; at += 32) {
      const n = Math.min(32, nRec - at);
      const bytes = originals.subarray(at * per, (at + n) * per);
      const x = imagesToTensor(bytes, n, S);
      const rec = noGrad(() => scope(() => ops.clamp(denormalizeImages(decoder.unpatchify(decoder.forward(encodeBatch(enc, x)))), 0, 1)));
      const host = (await toArray(rec)) as Float32Array;
      x.dispose();
      rec.dispose();
      const orig = Float32Array.from(bytes, (v) => v / 255);
      psnrSum += psnr(host, orig, n) * n;
      if (S >= 11) ssimSum += ssim(host, orig, n, S, S) * n;
      for (let i = 0; i < host.length; i++) recon[at * per + i] = Math.round(host[i] * 255);
      await runtime().yieldIfBusy();
    }
    const origFeat = await cachedFeatures(data.heldOut, 'held-out', recIdx, 'held-out originals');
    const recFeat = await extractFeatures(imageSetFromChw('reconstructions', recon, nRec, S), net, { ...ext, label: 'reconstructions' });
    const reconstruction = compareFeatureSets(
      origFeat,
      recFeat,
      { a: 'held-out originals', b: 'reconstructions' },
      { kidSubsets: opts.kidSubsets, seed: opts.seed },
    );
    warnings.push(...reconstruction.warnings.map((w) => `rFID: ${w}`));

    // Samples against the training set.
    let generation: SetComparison | null = null;
    let samplesTag: string | null = null;
    const ditDir = latestCheckpoint(runDir, 'dit');
    if (!ditDir) {
      warnings.push(
        `no DiT checkpoint in ${runDir}: gFID/KID/precision/recall need 'rae train-dit --run ${runDir}' first; rFID and PSNR/SSIM only`,
      );
      decoder.dispose();
    } else {
      let found = existingSamples(runDir, nGen, S);
      if (!found) {
        say(`sampling ${nGen} images for gFID (${c.sample.sampler}, ${c.sample.steps} steps, guidance ${c.sample.guidance})`);
        const tag = `eval-${nGen}`;
        const cfg: RunConfig = { ...c, sample: { ...c.sample, count: nGen } };
        await sampleRun({ runDir, config: cfg, enc, decoder, tag, seed: opts.seed, quiet: opts.quiet });
        found = existingSamples(runDir, nGen, S);
        if (!found) throw new RunError(`${runDir}/samples/${tag}: sampling wrote no usable samples.safetensors`);
      }
      decoder.dispose();
      samplesTag = found.tag;
      const genFeat = await extractFeatures(imageSetFromChw(`samples ${found.tag}`, found.images, nGen, S), net, {
        ...ext,
        label: 'samples',
      });
      const refFeat = await cachedFeatures(data.train, 'train', spread(nRef, data.train.size), 'training reference');
      generation = compareFeatureSets(
        refFeat,
        genFeat,
        { a: 'training set', b: 'samples' },
        { kidSubsets: opts.kidSubsets, seed: opts.seed },
      );
      warnings.push(...generation.warnings.map((w) => `gFID: ${w}`));
    }
    const json: RunEvalJson = {
      rfid: reconstruction.fid,
      gfid: generation?.fid ?? null,
      kid: generation?.kid ?? null,
      kidStd: generation?.kidStd ?? null,
      precision: generation?.precision ?? null,
      recall: generation?.recall ?? null,
      psnr: psnrSum / nRec,
      ssim: S >= 11 ? ssimSum / nRec : null,
      counts: { reconstructions: nRec, samples: generation ? nGen : 0, reference: generation ? nRef : 0 },
      reconstruction,
      generation,
      featureNetwork: net.id,
      weightsSha256: net.weightsSha256,
      comparable: net.comparable,
      note: net.comparable ? FID_INCEPTION_NOTE : NSFWJS_NOTE,
      decoderCheckpoint: path.basename(decDir),
      samplesTag,
      seconds: (performance.now() - t0) / 1000,
      writtenAt: new Date().toISOString(),
      warnings,
    };
    fs.writeFileSync(path.join(runDir, EVAL_FILE), `${JSON.stringify(json, null, 2)}\n`);
    const f = (v: number | null, d = 3) => (v === null ? 'n/a' : v.toFixed(d));
    const summary =
      `rFID ${f(json.rfid, 2)} (${nRec} held-out images)  PSNR ${json.psnr.toFixed(2)} dB  SSIM ${f(json.ssim)}` +
      (generation
        ? `  gFID ${f(json.gfid, 2)}  KID ${generation.kid.toExponential(3)} ± ${generation.kidStd.toExponential(2)}  precision ${f(json.precision)}  recall ${f(json.recall)} (${nGen} samples vs ${nRef} training images)`
        : '');
    return { json, warnings, summary };
  } finally {
    if (!opts.network) net.dispose();
  }
}
