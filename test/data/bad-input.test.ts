/** User errors in data: one-line DataErrors naming the path; skipBad skips and counts bad files. */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BatchLoader, DataError, closeSharedDecodePools, openDataset } from '../../src/train/data/index.js';
import { idxBytes, tempDir, writeCifarBatch, writeFolder, writeTarGz, removeTempDirs } from './fixtures.js';

afterAll(async () => {
  await closeSharedDecodePools();
  removeTempDirs();
});

async function rejection(p: Promise<unknown>): Promise<DataError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(DataError);
  expect((e as Error).message).not.toContain('\n');
  return e as DataError;
}

/** A folder with 6 good JPEGs and one truncated one (b/001.jpg cut to half its length). */
async function folderWithTruncated(): Promise<{ root: string; bad: string }> {
  const root = tempDir('bad');
  await writeFolder(root, 'train', { a: 3, b: 4 }, 'jpeg');
  const bad = path.join(root, 'train', 'b', '001.jpg');
  const bytes = readFileSync(bad);
  writeFileSync(bad, bytes.subarray(0, Math.floor(bytes.length / 2)));
  return { root, bad };
}

describe('missing or empty data', () => {
  it('a missing path names the path', async () => {
    const missing = path.join(tempDir('missing'), 'nope');
    expect((await rejection(openDataset({ source: missing, imageSize: 8 }))).message).toBe(`data set not found: ${missing}`);
    expect((await rejection(openDataset({ source: missing, imageSize: 8, format: 'folder' }))).message).toContain(missing);
  });

  it('an empty folder, or one without images, names the folder', async () => {
    const empty = tempDir('empty');
    expect((await rejection(openDataset({ source: empty, imageSize: 8 }))).message).toContain(`${empty}: no images found`);
    mkdirSync(path.join(empty, 'train', 'cls'), { recursive: true });
    writeFileSync(path.join(empty, 'train', 'cls', 'notes.txt'), 'not an image');
    expect((await rejection(openDataset({ source: empty, imageSize: 8 }))).message).toContain(`${empty}: no images found`);
  });

  it('bad option values are DataErrors too', async () => {
    const root = tempDir('opts');
    await writeFolder(root, 'train', { a: 2 }, 'png');
    expect((await rejection(openDataset({ source: root, imageSize: 0 }))).message).toMatch(/imageSize/);
    expect((await rejection(openDataset({ source: root, imageSize: 8, heldOut: 2 }))).message).toMatch(
      /heldOut 2 leaves no training images/,
    );
    expect((await rejection(openDataset({ source: root, imageSize: 8, maxImages: 0 }))).message).toMatch(/maxImages must be at least 1/);
    expect((await rejection(openDataset({ source: root, imageSize: 8, heldOut: -1 }))).message).toMatch(
      /heldOut must be a non-negative integer/,
    );
  });
});

describe('unreadable or truncated images', () => {
  it.each([
    ['in memory, workers', { workers: 1 }],
    ['in memory, main thread', { workers: 0 }],
  ])('%s: a truncated JPEG fails naming the file; skipBad skips and records it', async (_, opts) => {
    const { root, bad } = await folderWithTruncated();
    const err = await rejection(openDataset({ source: root, imageSize: 8, ...opts }));
    expect(err.message).toContain(bad);
    expect(err.message).toContain('skipBad');
    const { train, heldOut } = await openDataset({ source: root, imageSize: 8, skipBad: true, ...opts });
    expect(train.size).toBe(6);
    expect(train.skipped.length).toBe(1);
    expect(heldOut.skipped.length).toBe(0); // counted once, by the set it belonged to
    expect(train.skipped[0].file).toBe(bad);
    expect(Array.from(train.labels)).toEqual([0, 0, 0, 1, 1, 1]);
    // Wherever the bad file falls, train + held-out count it once and keep the six good images.
    for (const seed of [0, 1, 2, 3]) {
      const split = await openDataset({ source: root, imageSize: 8, skipBad: true, heldOut: 3, seed, ...opts });
      expect(split.train.size + split.heldOut.size).toBe(6);
      expect([...split.train.skipped, ...split.heldOut.skipped].map((s) => s.file)).toEqual([bad]);
    }
  });

  it('a file that is not an image (garbage bytes under .png) is named too', async () => {
    const root = tempDir('garbage');
    await writeFolder(root, 'train', { a: 2 }, 'png');
    const bad = path.join(root, 'train', 'a', 'zz.png');
    writeFileSync(bad, 'definitely not a PNG');
    expect((await rejection(openDataset({ source: root, imageSize: 8, workers: 1 }))).message).toContain(bad);
  });

  it('streaming: a bad file found while reading fails naming it, or (skipBad) is replaced by the next image and counted', async () => {
    const { root, bad } = await folderWithTruncated();
    const strict = (await openDataset({ source: root, imageSize: 8, memoryBudget: 0, workers: 1 })).train;
    expect(strict.size).toBe(7); // not decoded yet
    const everything = [...Array(7).keys()];
    expect((await rejection(strict.read(everything))).message).toContain(bad);
    const sets = await openDataset({ source: root, imageSize: 8, memoryBudget: 0, workers: 1, skipBad: true });
    const lenient = sets.train;
    const loader = new BatchLoader(lenient, { batch: 7, seed: 0, flip: false });
    const batch = await loader.next();
    expect(batch.count).toBe(7);
    expect(lenient.skipped.map((s) => s.file)).toEqual([bad]);
    expect(sets.heldOut.skipped).toEqual([]);
    const per = 3 * 64;
    const badIndex = 4; // sorted: a/000..002, b/000, b/001 (bad), b/002, b/003
    const slot = Array.from(batch.indices).indexOf(badIndex);
    const replacement = await lenient.read([badIndex + 1]);
    expect(batch.images.subarray(slot * per, (slot + 1) * per)).toEqual(replacement);
    await loader.close();
  });

  it('a truncated .tar.gz names the archive', async () => {
    const root = tempDir('tar');
    await writeFolder(root, 'train', { a: 4 }, 'png');
    const file = path.join(tempDir('tar-out'), 'set.tar.gz');
    await writeTarGz(root, file);
    const whole = readFileSync(file);
    writeFileSync(file, whole.subarray(0, Math.floor(whole.length * 0.6)));
    expect((await rejection(openDataset({ source: file, imageSize: 8 }))).message).toContain(file);
  });

  it('a truncated CIFAR-10 batch or IDX file names the file', async () => {
    const dir = tempDir('cifar-bad');
    writeCifarBatch(path.join(dir, 'data_batch_1.bin'), [0, 1], 0);
    const batch = path.join(dir, 'data_batch_1.bin');
    writeFileSync(batch, readFileSync(batch).subarray(0, 5000));
    expect((await rejection(openDataset({ source: dir, imageSize: 32 }))).message).toContain(batch);

    const idx = tempDir('idx-bad');
    const images = path.join(idx, 'train-images-idx3-ubyte');
    writeFileSync(images, idxBytes(0x803, [3, 28, 28], new Uint8Array(2 * 784)));
    writeFileSync(path.join(idx, 'train-labels-idx1-ubyte'), idxBytes(0x801, [3], Uint8Array.from([0, 1, 2])));
    expect((await rejection(openDataset({ source: idx, imageSize: 28 }))).message).toContain(`${images}: truncated`);
  });
});
