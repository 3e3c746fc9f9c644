/** Each file format on small files written here, and a few images of the real CIFAR-10 archive. */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { makeImageOps } from '../../src/io/formats/image-ops.js';
import { closeSharedDecodePools, defaultDataSource, FASHION_MNIST_DIR, openDataset } from '../../src/train/data/index.js';
import { tempDir, writeCifarBatch, writeFolder, writeIdx, writeTarGz, removeTempDirs } from './fixtures.js';

const ops = makeImageOps();
const plane = (img: Uint8Array, i: number, size: number) => img.subarray(i * 3 * size * size, (i + 1) * 3 * size * size);
const all = (n: number) => Array.from({ length: n }, (_, i) => i);

afterAll(async () => {
  await closeSharedDecodePools();
  removeTempDirs();
});

describe('image folders and archives', () => {
  it('a <split>/<class>/<file> folder of PNGs: classes sorted, pixels = centre crop of what was written', async () => {
    const root = tempDir('folder');
    const written = await writeFolder(root, 'train', { zebra: 3, ant: 2 });
    const { train, heldOut } = await openDataset({ source: root, imageSize: 8, workers: 1 });
    expect(train.name).toBe(path.basename(root));
    expect(train.classes).toEqual(['ant', 'zebra']);
    expect(train.size).toBe(5);
    expect(heldOut.size).toBe(0);
    expect(Array.from(train.labels)).toEqual([0, 0, 1, 1, 1]);
    const bytes = await train.read(all(5));
    // Sorted by (class, file): ant/000, ant/001, zebra/000…
    const order = [...written].sort((a, b) => (a.rel.split('/')[1] + a.rel).localeCompare(b.rel.split('/')[1] + b.rel));
    order.forEach((img, i) => expect(plane(bytes, i, 8)).toEqual(ops.centreCrop(img.rgb, img.w, img.h, 3, 8)));
  });

  it('a flat folder of images is one class named after the folder; test split needs a test folder', async () => {
    const root = path.join(tempDir('flat'), 'my-pictures');
    const written = await writeFolder(root, '.', { '.': 3 }, 'png');
    expect(written.length).toBe(3);
    const { train } = await openDataset({ source: root, imageSize: 6, workers: 0 });
    expect(train.classes).toEqual(['my-pictures']);
    expect(train.size).toBe(3);
    await expect(openDataset({ source: root, imageSize: 6, split: 'test' })).rejects.toThrow(`${root}: no 'test' folder`);
  });

  it('a .tar.gz of a folder (JPEG and PNG) reads the same bytes as the folder; splits are kept apart', async () => {
    const root = tempDir('arch');
    await writeFolder(root, 'train', { cat: 2, dog: 3 }, 'jpeg');
    await writeFolder(root, 'test', { cat: 1, dog: 1 }, 'png');
    const file = path.join(tempDir('arch-out'), 'pets.tar.gz');
    await writeTarGz(root, file);
    for (const split of ['train', 'test'] as const) {
      const fromDir = (await openDataset({ source: root, imageSize: 8, split, workers: 1 })).train;
      const fromTar = (await openDataset({ source: file, imageSize: 8, split, workers: 1 })).train;
      expect(fromTar.name).toBe('pets');
      expect(fromTar.classes).toEqual(['cat', 'dog']);
      expect(fromTar.size).toBe(split === 'train' ? 5 : 2);
      expect(Array.from(fromTar.labels)).toEqual(Array.from(fromDir.labels));
      expect(await fromTar.read(all(fromTar.size))).toEqual(await fromDir.read(all(fromDir.size)));
    }
  });
});

describe('CIFAR-10 binary batches', () => {
  it('reads 3073-byte records (label + planar RGB) from data_batch_N.bin / test_batch.bin, names from batches.meta.txt', async () => {
    const dir = path.join(tempDir('cifar'), 'cifar-10-batches-bin');
    const r1 = writeCifarBatch(path.join(dir, 'data_batch_1.bin'), [0, 2, 1], 0);
    const r2 = writeCifarBatch(path.join(dir, 'data_batch_2.bin'), [2, 2], 3);
    const rt = writeCifarBatch(path.join(dir, 'test_batch.bin'), [1], 5);
    writeFileSync(path.join(dir, 'batches.meta.txt'), 'red\ngreen\nblue\n\n');
    const { train } = await openDataset({ source: path.dirname(dir), imageSize: 32, workers: 1 });
    expect(train.name).toBe('cifar10');
    expect(train.classes).toEqual(['red', 'green', 'blue']);
    expect(Array.from(train.labels)).toEqual([0, 2, 1, 2, 2]);
    const got = await train.read(all(5));
    [...r1, ...r2].forEach((chw, i) => expect(plane(got, i, 32)).toEqual(chw));
    const test = (await openDataset({ source: dir, imageSize: 32, split: 'test', workers: 0 })).train;
    expect(await test.read([0])).toEqual(rt[0]);
    // Upsampled to 48: the crop of the interleaved image.
    const up = (await openDataset({ source: dir, imageSize: 48, workers: 0 })).train;
    const hwc = new Uint8Array(3072);
    for (let i = 0; i < 1024; i++) for (let c = 0; c < 3; c++) hwc[3 * i + c] = r1[1][c * 1024 + i];
    expect(await up.read([1])).toEqual(ops.centreCrop(hwc, 32, 32, 3, 48));
  });
});

describe('IDX files (MNIST / Fashion-MNIST)', () => {
  it.each([true, false])('gzipped=%s: grey 28×28 images become three equal channels; labels from the labels file', async (gz) => {
    const dir = path.join(tempDir('idx'), 'fashion-mnist');
    const labels = [3, 0, 9, 1];
    const data = writeIdx(dir, 'train', labels, 28, 28, gz);
    const testData = writeIdx(dir, 't10k', [5, 5], 28, 28, gz);
    const { train } = await openDataset({ source: dir, imageSize: 28, workers: gz ? 1 : 0 });
    expect(train.name).toBe('fashion-mnist');
    expect(train.classes.length).toBe(10);
    expect(train.classes[0]).toBe('T-shirt/top');
    expect(Array.from(train.labels)).toEqual(labels);
    const got = await train.read([2]);
    const grey = data.subarray(2 * 784, 3 * 784);
    for (let c = 0; c < 3; c++) expect(got.subarray(c * 784, (c + 1) * 784)).toEqual(grey);
    const test = (await openDataset({ source: dir, imageSize: 32, split: 'test', workers: 0 })).train;
    expect(test.size).toBe(2);
    expect(await test.read([1])).toEqual(ops.centreCrop(testData.subarray(784, 2 * 784), 28, 28, 1, 32));
  });
});

const here = path.dirname(fileURLToPath(import.meta.url));
const realArchive = path.resolve(here, '..', '..', '..', 'shared', 'datasets', 'cifar10-jpeg.tar.gz');

describe.skipIf(!existsSync(realArchive))('the real CIFAR-10 archive (../shared/datasets)', () => {
  it('opens the train split (10 classes), stratifies a small subset and decodes a few images', async () => {
    const { train, heldOut } = await openDataset({ source: realArchive, imageSize: 32, maxImages: 20, heldOut: 10, seed: 3 });
    expect(train.classes).toEqual(['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck']);
    expect(train.size).toBe(20);
    expect(heldOut.size).toBe(10);
    // Stratified over 10 equal classes: two per class in train, one per class held out.
    for (let k = 0; k < 10; k++) expect(train.labels.filter((l) => l === k).length).toBe(2);
    expect(new Set(heldOut.labels).size).toBe(10);
    const img = await train.read([0, 1]);
    expect(img.length).toBe(2 * 3 * 32 * 32);
    const first = plane(img, 0, 32);
    expect(Math.max(...first) - Math.min(...first)).toBeGreaterThan(30); // a photo, not a blank
  });
});

describe('default demo data', () => {
  it('is the CIFAR-10 archive next to the package when present, else Debian Fashion-MNIST', () => {
    const d = defaultDataSource();
    if (existsSync(realArchive)) expect(d).toEqual({ source: realArchive, name: 'cifar10' });
    else expect(d).toEqual({ source: FASHION_MNIST_DIR, name: 'fashion-mnist' });
  });

  it.skipIf(!existsSync(path.join(FASHION_MNIST_DIR, 'train-images-idx3-ubyte.gz')))(
    'Debian’s Fashion-MNIST opens (both splits): 10 named classes, grey as three equal channels',
    async () => {
      const { train, heldOut } = await openDataset({ source: FASHION_MNIST_DIR, imageSize: 32, heldOut: 10, maxImages: 30, workers: 0 });
      expect(train.name).toBe('fashion-mnist');
      expect(train.classes).toEqual([
        'T-shirt/top',
        'Trouser',
        'Pullover',
        'Dress',
        'Coat',
        'Sandal',
        'Shirt',
        'Sneaker',
        'Bag',
        'Ankle boot',
      ]);
      expect([train.size, heldOut.size]).toEqual([30, 10]);
      const img = await train.read([0]);
      expect(img.subarray(0, 1024)).toEqual(img.subarray(1024, 2048)); // grey: equal channels
      const test = await openDataset({ source: FASHION_MNIST_DIR, imageSize: 28, split: 'test', maxImages: 5, workers: 0 });
      expect(test.train.size).toBe(5);
    },
  );
});

describe('PNG colour types', () => {
  it('grey PNGs become three equal channels; RGBA PNGs drop alpha (as PIL convert("RGB"))', async () => {
    const root = tempDir('colour');
    const [w, h] = [9, 7];
    const grey = Uint8Array.from({ length: w * h }, (_, i) => (i * 29) & 255);
    const rgba = Uint8Array.from({ length: w * h * 4 }, (_, i) => (i * 41 + 3) & 255);
    mkdirSync(path.join(root, 'train', 'g'), { recursive: true });
    mkdirSync(path.join(root, 'train', 'r'), { recursive: true });
    await sharp(grey, { raw: { width: w, height: h, channels: 1 } })
      .png()
      .toFile(path.join(root, 'train', 'g', 'grey.png'));
    await sharp(rgba, { raw: { width: w, height: h, channels: 4 } })
      .png()
      .toFile(path.join(root, 'train', 'r', 'alpha.png'));
    const { train } = await openDataset({ source: root, imageSize: 5, workers: 1 });
    const got = await train.read([0, 1]);
    expect(got.subarray(0, 75)).toEqual(ops.centreCrop(grey, w, h, 1, 5));
    const rgb = Uint8Array.from({ length: w * h * 3 }, (_, i) => rgba[Math.floor(i / 3) * 4 + (i % 3)]);
    expect(got.subarray(75, 150)).toEqual(ops.centreCrop(rgb, w, h, 3, 5));
  });
});
