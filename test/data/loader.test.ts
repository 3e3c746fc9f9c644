/**
 * BatchLoader and the splits: permutations per epoch, deterministic ~50% flips, stratified and
 * disjoint held-out images, bitwise restore, and the same bytes whichever way images are decoded
 * (main thread / workers, in memory / streamed).
 */
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type ImageDataset, BatchLoader, closeSharedDecodePools, openDataset } from '../../src/train/data/index.js';
import { openImageFolder } from '../../src/io/formats/folder.js';
import { type RecordDataset, RecordDecoder } from '../../src/train/data/dataset.js';
import { DecodePool } from '../../src/train/data/pool.js';
import { mirrorInPlace } from '../../src/train/data/loader.js';
import { flipOf } from '../../src/train/data/random.js';
import { tempDir, writeCifarBatch, writeFolder, removeTempDirs } from './fixtures.js';

afterAll(async () => {
  await closeSharedDecodePools();
  removeTempDirs();
});

/** An in-memory data set whose image i is filled with a pattern identifying i (and its columns). */
function fakeDataset(n: number, size = 4, classes = 3): ImageDataset {
  const per = 3 * size * size;
  return {
    name: 'fake',
    size: n,
    imageSize: size,
    classes: Array.from({ length: classes }, (_, k) => `c${k}`),
    labels: Int32Array.from({ length: n }, (_, i) => i % classes),
    skipped: [],
    read: async (indices) => {
      const out = new Uint8Array(indices.length * per);
      Array.from(indices).forEach((idx, j) => {
        for (let p = 0; p < per; p++) out[j * per + p] = (idx * 7 + (p % size) * 31 + Math.floor(p / size)) & 255;
      });
      return out;
    },
  };
}

async function take(loader: BatchLoader, batches: number) {
  const out = [];
  for (let b = 0; b < batches; b++) out.push(await loader.next());
  return out;
}

describe('BatchLoader order', () => {
  it('each epoch is a permutation (no replacement), different per epoch and per seed', async () => {
    const ds = fakeDataset(10);
    const loader = new BatchLoader(ds, { batch: 3, seed: 5, flip: false, dropLast: false });
    const epochs: number[][] = [];
    for (let e = 0; e < 3; e++) {
      const batches = await take(loader, 4); // 3 + 3 + 3 + 1
      expect(batches.map((b) => b.count)).toEqual([3, 3, 3, 1]);
      const seen = batches.flatMap((b) => Array.from(b.indices));
      expect([...seen].sort((a, b) => a - b)).toEqual([...Array(10).keys()]);
      epochs.push(seen);
      for (const b of batches) expect(Array.from(b.labels)).toEqual(Array.from(b.indices, (i) => i % 3));
    }
    expect(epochs[0]).not.toEqual(epochs[1]);
    expect(epochs[1]).not.toEqual(epochs[2]);
    const other = new BatchLoader(ds, { batch: 10, seed: 6, flip: false, dropLast: false });
    expect(Array.from((await other.next()).indices)).not.toEqual(epochs[0]);
    await loader.close();
  });

  it('dropLast (the default) visits floor(n / batch) full batches per epoch, all distinct', async () => {
    const loader = new BatchLoader(fakeDataset(10), { batch: 4, seed: 1, flip: false });
    const batches = await take(loader, 2);
    expect(batches.map((b) => b.count)).toEqual([4, 4]);
    expect(new Set(batches.flatMap((b) => Array.from(b.indices))).size).toBe(8);
    expect(loader.state()).toEqual({ seed: 1, epoch: 1, position: 0 });
    expect(() => new BatchLoader(fakeDataset(3), { batch: 4, seed: 1, flip: false })).toThrow(/batch size 4 is larger than the data set/);
  });
});

describe('flips', () => {
  it('are a pure function of (seed, epoch, index), about half of the images', () => {
    let flipped = 0;
    const N = 4000;
    for (let i = 0; i < N; i++) {
      const f = flipOf(9, i % 7, i);
      expect(flipOf(9, i % 7, i)).toBe(f);
      flipped += f ? 1 : 0;
    }
    // Binomial(4000, ½): σ ≈ 32; ±5σ.
    expect(Math.abs(flipped - N / 2)).toBeLessThan(160);
    // Epochs and seeds decorrelate the coin of one image.
    const perEpoch = Array.from({ length: 64 }, (_, e) => flipOf(9, e, 17));
    expect(perEpoch.some((f) => f) && perEpoch.some((f) => !f)).toBe(true);
  });

  it('the loader mirrors exactly the images whose coin says so', async () => {
    const ds = fakeDataset(12, 5);
    const plain = new BatchLoader(ds, { batch: 6, seed: 2, flip: false });
    const flip = new BatchLoader(ds, { batch: 6, seed: 2, flip: true });
    const per = 3 * 25;
    for (let b = 0; b < 4; b++) {
      const epoch = plain.state().epoch;
      const [p, f] = [await plain.next(), await flip.next()];
      expect(f.indices).toEqual(p.indices);
      expect(Array.from(f.flips)).toEqual(Array.from(f.indices, (i) => (flipOf(2, epoch, i) ? 1 : 0)));
      expect(p.flips.every((v) => v === 0)).toBe(true);
      p.indices.forEach((idx, i) => {
        const want = p.images.slice(i * per, (i + 1) * per);
        if (flipOf(2, epoch, idx)) mirrorInPlace(want, 0, 5);
        expect(f.images.subarray(i * per, (i + 1) * per)).toEqual(want);
      });
    }
  });

  it('images: false yields the same indices, labels and flips without decoding', async () => {
    const ds = fakeDataset(9);
    let reads = 0;
    const counting: ImageDataset = {
      ...ds,
      read: (i) => {
        reads++;
        return ds.read(i);
      },
    };
    const withImages = await take(new BatchLoader(ds, { batch: 4, seed: 8, flip: true }), 5);
    const without = await take(new BatchLoader(counting, { batch: 4, seed: 8, flip: true, images: false }), 5);
    expect(reads).toBe(0);
    without.forEach((b, i) => {
      expect(b.images.length).toBe(0);
      expect([b.indices, b.labels, b.flips]).toEqual([withImages[i].indices, withImages[i].labels, withImages[i].flips]);
    });
  });

  it('mirrorInPlace reverses each row of each channel', () => {
    const two = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    mirrorInPlace(two, 0, 2);
    expect(Array.from(two)).toEqual([2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11]);
    const three = Uint8Array.from({ length: 2 * 27 }, (_, i) => i);
    mirrorInPlace(three, 1, 3); // second image of a batch; the first stays as it was
    expect(Array.from(three.subarray(0, 27))).toEqual([...Array(27).keys()]);
    expect(Array.from(three.subarray(27, 33))).toEqual([29, 28, 27, 32, 31, 30]);
  });
});

/** A CIFAR-10 binary data set of 3 unbalanced classes: 30, 20 and 10 images. */
function unbalancedCifar(): string {
  const dir = tempDir('split');
  const labels = [...Array(30).fill(0), ...Array(20).fill(1), ...Array(10).fill(2)];
  writeCifarBatch(path.join(dir, 'data_batch_1.bin'), labels.slice(0, 35), 0);
  writeCifarBatch(path.join(dir, 'data_batch_2.bin'), labels.slice(35), 35);
  return dir;
}

const key = (bytes: Uint8Array, i: number, per: number) => Buffer.from(bytes.subarray(i * per, (i + 1) * per)).toString('base64');

describe('held-out split and subsets', () => {
  it('held-out images are disjoint from training ones, stratified by class, and seeded', async () => {
    const dir = unbalancedCifar();
    const { train, heldOut } = await openDataset({ source: dir, imageSize: 32, heldOut: 12, seed: 4, workers: 0 });
    expect(heldOut.size).toBe(12);
    expect(train.size).toBe(48);
    // 12 of 60 from 30/20/10: exactly 6/4/2.
    expect([0, 1, 2].map((k) => heldOut.labels.filter((l) => l === k).length)).toEqual([6, 4, 2]);
    const per = 3 * 32 * 32;
    const h = await heldOut.read([...Array(12).keys()]);
    const t = await train.read([...Array(48).keys()]);
    const held = new Set(Array.from({ length: 12 }, (_, i) => key(h, i, per)));
    const trained = new Set(Array.from({ length: 48 }, (_, i) => key(t, i, per)));
    expect(held.size + trained.size).toBe(60); // all distinct images, none in both
    const again = await openDataset({ source: dir, imageSize: 32, heldOut: 12, seed: 4, workers: 0 });
    expect(await again.heldOut.read([...Array(12).keys()])).toEqual(h);
    const otherSeed = await openDataset({ source: dir, imageSize: 32, heldOut: 12, seed: 5, workers: 0 });
    expect(await otherSeed.heldOut.read([...Array(12).keys()])).not.toEqual(h);
  });

  it('maxImages caps training images with a stratified subset of what is not held out', async () => {
    const { train, heldOut } = await openDataset({
      source: unbalancedCifar(),
      imageSize: 32,
      heldOut: 6,
      maxImages: 18,
      seed: 1,
      workers: 0,
    });
    expect(heldOut.size).toBe(6);
    expect(train.size).toBe(18);
    expect([0, 1, 2].map((k) => train.labels.filter((l) => l === k).length)).toEqual([9, 6, 3]);
  });
});

describe('restore and decoding paths', () => {
  async function folderSet(): Promise<string> {
    const root = tempDir('restore');
    await writeFolder(root, 'train', { a: 5, b: 4, c: 5 }, 'jpeg');
    return root;
  }

  it('a restored loader reproduces the remaining batches bit for bit (streaming, flips on, across epochs)', async () => {
    const { train } = await openDataset({ source: await folderSet(), imageSize: 8, memoryBudget: 0, workers: 1 });
    expect((train as RecordDataset).inMemory).toBe(false);
    const opts = { batch: 4, seed: 11, flip: true };
    const full = new BatchLoader(train, opts);
    const reference = await take(full, 9); // 3 batches per epoch: three epochs
    const first = new BatchLoader(train, opts);
    await take(first, 4);
    const saved = JSON.parse(JSON.stringify(first.state()));
    expect(saved).toEqual({ seed: 11, epoch: 1, position: 4 });
    await first.close();
    const resumed = new BatchLoader(train, opts);
    resumed.restore(saved);
    const rest = await take(resumed, 5);
    rest.forEach((b, i) => {
      expect(b.indices).toEqual(reference[4 + i].indices);
      expect(b.labels).toEqual(reference[4 + i].labels);
      expect(b.images).toEqual(reference[4 + i].images);
    });
    expect(() => resumed.restore({ seed: 12, epoch: 0, position: 0 })).toThrow(/data seed 12/);
    await Promise.all([full.close(), resumed.close()]);
  });

  it('worker decoding gives the same bytes as main-thread decoding, streaming the same as in memory', async () => {
    const root = await folderSet();
    const variants = [{ workers: 0 }, { workers: 2 }, { workers: 1, memoryBudget: 0 }, { workers: 0, memoryBudget: 0 }];
    const results = [];
    // The workers must really decode: a pool that fails falls back to the main thread with the same
    // bytes and only a process warning to show for it, so equal bytes alone would not tell.
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    for (const v of variants) {
      const { train, heldOut } = await openDataset({ source: root, imageSize: 12, heldOut: 3, seed: 2, ...v });
      expect((train as RecordDataset).inMemory).toBe(v.memoryBudget === undefined);
      const loader = new BatchLoader(train, { batch: 5, seed: 3, flip: true });
      const batches = await take(loader, 4);
      results.push({ batches: batches.map((b) => [b.indices, b.images]), held: await heldOut.read([0, 1, 2]) });
      await loader.close();
    }
    await new Promise((r) => setTimeout(r, 10));
    process.off('warning', onWarning);
    expect(warnings.filter((w) => w.includes('decode worker'))).toEqual([]);
    for (const r of results.slice(1)) expect(r).toEqual(results[0]);
  });
});

describe('decode pool failure', () => {
  it('a pool whose workers cannot start falls back to main-thread decoding with the same bytes', async () => {
    const root = tempDir('broken-pool');
    await writeFolder(root, 'train', { a: 3 }, 'png');
    const source = openImageFolder(root, 'train');
    const broken = new DecodePool(1, 'throw new ReferenceError("__name is not defined")');
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    const viaBroken = await new RecordDecoder(source, 6, broken, false).decode([0, 1, 2]);
    const direct = await new RecordDecoder(source, 6, null, false).decode([0, 1, 2]);
    await new Promise((r) => setTimeout(r, 10));
    process.off('warning', onWarning);
    expect(viaBroken.out).toEqual(direct.out);
    expect(warnings.some((w) => w.includes('decoding on the main thread'))).toBe(true);
    await broken.close();
  });
});
