/**
 * The linear probe's feature side (src/eval/probe.ts) and its data split:
 *  - poolTokens and extractFeatures (batched, with a partial last batch, decoding overlapped)
 *    against a direct computation: the encoder's tokens of all images in one batch, read back
 *    and averaged over the tokens in float64; rel-by-max within TOL;
 *  - loadEncoder(…, { randomInit }) gives the seeded initialisation, not the run's saved encoder;
 *  - openProbeData: the data set's own test split when it has one (IDX t10k files), else a
 *    stratified hold-out (a flat class folder); test classes mapped by name onto the training
 *    split's indices; a class missing from training is an error;
 *  - runProbe end to end on a tiny IDX set; an encoder whose weights are NaN is a clear error.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { extractFeatures, openProbeData, poolTokens, runProbe } from '../../src/eval/probe.js';
import { tensor, toArray } from '../../src/tensor/creation.js';
import { writeHost } from '../../src/tensor/copy.js';
import { presetConfig, type RunConfig } from '../../src/train/config.js';
import { type EncoderInfo, encodeBatch, loadEncoder } from '../../src/train/context.js';
import { loadSafetensors, saveSafetensors } from '../../src/io/safetensors.js';
import { closeSharedDecodePools, type ImageDataset, imagesToTensor } from '../../src/train/data/index.js';
import { relByMax } from '../helpers/compare.js';
import { randomData, randomInts } from '../helpers/random.js';
import { useGpu } from '../helpers/setup.js';
import { pixels, removeTempDirs, tempDir, writeFolder, writeIdx } from '../data/fixtures.js';

useGpu();
afterAll(async () => {
  removeTempDirs();
  await closeSharedDecodePools();
});

/** Batched vs one-batch encoding of the same images, both f32 on the GPU: measured 9.2e-8. */
const TOL = 1e-5;

function tinyConfig(source = ''): RunConfig {
  const c = presetConfig('tiny');
  c.data.source = source;
  return c;
}

/** An in-memory data set of n random 3×S×S images. */
function memoryDataset(n: number, S: number, classes: number): ImageDataset & { bytes: Uint8Array } {
  const bytes = pixels(S, S, 3 * n, 77);
  const per = 3 * S * S;
  return {
    name: 'memory',
    size: n,
    imageSize: S,
    classes: Array.from({ length: classes }, (_, k) => `c${k}`),
    labels: randomInts(n, 78, classes),
    skipped: [],
    bytes,
    async read(indices) {
      const out = new Uint8Array(indices.length * per);
      Array.from(indices).forEach((i, k) => out.set(bytes.subarray(i * per, (i + 1) * per), k * per));
      return out;
    },
  };
}

describe('feature pooling', () => {
  it('poolTokens is the mean over tokens', async () => {
    const [B, N, D] = [3, 7, 5];
    const data = Float32Array.from(randomData(B * N * D, 5, -2, 2));
    const got = await toArray(poolTokens(tensor(data, [B, N, D])));
    const want = new Float64Array(B * D);
    for (let b = 0; b < B; b++) for (let n = 0; n < N; n++) for (let d = 0; d < D; d++) want[b * D + d] += data[(b * N + n) * D + d] / N;
    expect(relByMax(got, want)).toBeLessThan(TOL);
    expect(() => poolTokens(tensor(data, [B * N, D]))).toThrow(/expected tokens \[B, N, D\]/);
  });

  it('extractFeatures (batches of 2, last one partial) equals the float64 mean of one-batch tokens', async () => {
    const enc = await loadEncoder('', tinyConfig(), { randomInit: true });
    const ds = memoryDataset(5, 16, 3);
    const seen: number[] = [];
    const f = await extractFeatures(enc, ds, { batch: 2, onProgress: (done) => seen.push(done) });
    expect(seen).toEqual([2, 4, 5]);
    expect(f.dim).toBe(enc.dim);
    expect(Array.from(f.labels)).toEqual(Array.from(ds.labels));
    const tokens = encodeBatch(enc, imagesToTensor(ds.bytes, 5, 16));
    const [B, N, D] = tokens.shape;
    const t = await toArray(tokens);
    const want = new Float64Array(B * D);
    for (let b = 0; b < B; b++) for (let n = 0; n < N; n++) for (let d = 0; d < D; d++) want[b * D + d] += t[(b * N + n) * D + d] / N;
    expect(relByMax(f.x, want)).toBeLessThan(TOL);
    // Not all the same vector: the encoder sees different images.
    expect(relByMax(f.x.subarray(0, D), f.x.subarray(D, 2 * D))).toBeGreaterThan(1e-3);
    enc.encoder.dispose();
  });

  it('randomInit ignores a saved encoder and is seeded', async () => {
    const dir = tempDir('probe-enc');
    const c = tinyConfig();
    (await loadEncoder(dir, c)).encoder.dispose();
    const file = path.join(dir, 'encoder.safetensors');
    // Change the run's saved encoder: the plain load must see it, the random-init one must not.
    const loaded = loadSafetensors(file) as Map<string, { shape: number[]; data: ArrayLike<number> }>;
    const state = new Map([...loaded].map(([k, v]) => [k, { shape: v.shape, data: Float32Array.from(v.data) }]));
    const name = 'embeddings.patch_embeddings.projection.weight';
    const first = state.get(name)!;
    state.set(name, { shape: first.shape, data: new Float32Array(first.data.length).fill(0.5) });
    saveSafetensors(file, state);
    const value = async (e: EncoderInfo) => toArray(e.encoder.namedParameters().find(([k]) => k === name)![1]);
    const saved = await loadEncoder(dir, c);
    expect((await value(saved)).every((v) => v === 0.5)).toBe(true);
    const a = await loadEncoder(dir, c, { randomInit: true });
    const b = await loadEncoder(dir, c, { randomInit: true });
    expect(Array.from(await value(a))).toEqual(Array.from(first.data));
    expect(Array.from(await value(b))).toEqual(Array.from(first.data));
    for (const e of [saved, a, b]) e.encoder.dispose();
  });
});

describe('random initialisation of a snapshot architecture', () => {
  it("builds the snapshot's config.json architecture without reading its weights", async () => {
    const snap = tempDir('probe-snapshot');
    const config = {
      model_type: 'dinov2_with_registers',
      hidden_size: 24,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      intermediate_size: 48,
    };
    fs.writeFileSync(
      path.join(snap, 'config.json'),
      JSON.stringify({ ...config, patch_size: 14, image_size: 224, num_register_tokens: 2 }),
    );
    const c = tinyConfig();
    c.encoder.path = snap;
    // No weight files: a pretrained load must fail, a random-init one must not touch them.
    await expect(loadEncoder('', c)).rejects.toThrow();
    const enc = await loadEncoder('', c, { randomInit: true });
    expect(enc).toMatchObject({ dim: 24, inputSize: 224, grid: 16 });
    expect(enc.note).toMatch(/randomly initialised DINOv2 with the architecture of/);
    const f = await extractFeatures(enc, memoryDataset(2, 16, 2), { batch: 2 });
    expect(f.x.length).toBe(2 * 24);
    expect(f.x.every(Number.isFinite)).toBe(true);
    enc.encoder.dispose();
  });
});

describe('probe data', () => {
  it("uses the data set's test split when it has one", async () => {
    const dir = tempDir('probe-idx');
    writeIdx(
      dir,
      'train',
      Array.from({ length: 40 }, (_, i) => i % 4),
      8,
      8,
      false,
    );
    writeIdx(
      dir,
      't10k',
      Array.from({ length: 12 }, (_, i) => i % 4),
      8,
      8,
      false,
    );
    const d = await openProbeData(tinyConfig(dir), { trainImages: 20, testImages: 8 }, { workers: 0 });
    expect(d.split).toBe('test');
    expect(d.train.size).toBe(20);
    expect(d.test.size).toBe(8);
    // Stratified subsets: every class present in both.
    expect(new Set(d.train.labels).size).toBe(4);
    expect(new Set(d.testLabels).size).toBe(4);
  });

  it('without a test split: a stratified hold-out of the training images', async () => {
    const dir = tempDir('probe-flat');
    await writeFolder(dir, 'imgs', { cat: 6, dog: 6 });
    const d = await openProbeData(tinyConfig(path.join(dir, 'imgs')), { trainImages: 8, testImages: 4 }, { workers: 0 });
    expect(d.split).toBe('held-out');
    expect(d.test.size).toBe(4);
    expect(d.train.size).toBe(8);
    expect([...d.testLabels].sort()).toEqual([0, 0, 1, 1]);
  });

  it('test classes are matched by name; a class only in the test split is an error', async () => {
    const dir = tempDir('probe-split');
    await writeFolder(dir, 'train', { ant: 3, bee: 3, cow: 3 });
    await writeFolder(dir, 'test', { bee: 2, cow: 2 });
    const d = await openProbeData(tinyConfig(dir), { trainImages: 9, testImages: 4 }, { workers: 0 });
    expect(d.test.classes).toEqual(['bee', 'cow']);
    expect(Array.from(d.testLabels)).toEqual([1, 1, 2, 2]);
    await writeFolder(dir, 'test', { eel: 1 });
    await expect(openProbeData(tinyConfig(dir), { trainImages: 9, testImages: 5 }, { workers: 0 })).rejects.toThrow(
      /class 'eel', absent from the training split/,
    );
  });
});

describe('runProbe', () => {
  it('end to end on a tiny IDX set: counts, dimensions and an accuracy in [0, 1]', async () => {
    const dir = tempDir('probe-run');
    writeIdx(
      dir,
      'train',
      Array.from({ length: 30 }, (_, i) => i % 3),
      8,
      8,
      true,
    );
    writeIdx(
      dir,
      't10k',
      Array.from({ length: 9 }, (_, i) => i % 3),
      8,
      8,
      true,
    );
    const lines: string[] = [];
    const r = await runProbe({
      config: tinyConfig(dir),
      randomInit: true,
      trainImages: 24,
      testImages: 9,
      epochs: 5,
      workers: 0,
      log: (l) => lines.push(l),
    });
    expect(r).toMatchObject({ classes: 3, trainImages: 24, testImages: 9, split: 'test', featureDim: 16, epochs: 5, randomInit: true });
    expect(r.accuracy).toBeGreaterThanOrEqual(0);
    expect(r.accuracy).toBeLessThanOrEqual(1);
    expect(r.validation.map((v) => v.weightDecay)).toEqual([0, 0.1, 1]);
    expect(lines.some((l) => l.includes('training features 24/24'))).toBe(true);
  });

  it('an encoder producing NaN is a clear error, not an accuracy', async () => {
    const dir = tempDir('probe-nan');
    writeIdx(
      dir,
      'train',
      Array.from({ length: 12 }, (_, i) => i % 2),
      8,
      8,
      false,
    );
    writeIdx(
      dir,
      't10k',
      Array.from({ length: 4 }, (_, i) => i % 2),
      8,
      8,
      false,
    );
    const c = tinyConfig(dir);
    const enc = await loadEncoder('', c, { randomInit: true });
    for (const [, p] of enc.encoder.namedParameters()) writeHost(p, new Float32Array(p.size).fill(Number.NaN));
    await expect(runProbe({ config: c, enc, trainImages: 12, testImages: 4, epochs: 1, workers: 0 })).rejects.toThrow(
      /training features: \d+ feature value\(s\) are NaN or ±Inf, the first at row 0, column 0/,
    );
    enc.encoder.dispose();
  });
});
