/**
 * Image sets for `rae eval`: flat folders, class folders and .tar.gz archives of them, images of
 * different sizes and kinds (RGB PNG, grey PNG, RGBA PNG, JPEG) decoded to u8 RGB at their own size
 * (pixels checked against what the test wrote), read in any batch ranges; unreadable images,
 * missing paths and non-image paths are errors naming the file.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { imageSetFromChw, openImageSet } from '../../src/eval/image-set.js';

const dir = mkdtempSync(path.join(tmpdir(), 'rae-image-set-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Deterministic RGB pixels of a w×h image (HWC). */
function pixels(w: number, h: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: w * h * 3 }, (_, i) => (i * 37 + seed * 101) % 256);
}

async function png(file: string, w: number, h: number, seed: number): Promise<Uint8Array> {
  mkdirSync(path.dirname(file), { recursive: true });
  const data = pixels(w, h, seed);
  await sharp(data, { raw: { width: w, height: h, channels: 3 } })
    .png()
    .toFile(file);
  return data;
}

describe('openImageSet', () => {
  it('reads a flat folder of PNGs of different sizes, at their own size, in any batches', async () => {
    const root = path.join(dir, 'flat');
    const want = [await png(`${root}/a.png`, 7, 5, 1), await png(`${root}/b.png`, 12, 9, 2), await png(`${root}/c.png`, 3, 4, 3)];
    writeFileSync(`${root}/notes.txt`, 'not an image');
    const set = await openImageSet(root);
    expect(set.count).toBe(3);
    const all = [...(await set.read(0, 2)), ...(await set.read(2, 3))];
    expect(all.map((im) => [im.width, im.height])).toEqual([
      [7, 5],
      [12, 9],
      [3, 4],
    ]);
    all.forEach((im, i) => expect(im.data).toEqual(want[i]));
  });

  it('reads class folders and a .tar.gz of them; grey and RGBA images become RGB', async () => {
    const root = path.join(dir, 'classes');
    const cat = await png(`${root}/cat/1.png`, 6, 6, 4);
    mkdirSync(`${root}/dog`, { recursive: true });
    const grey = Uint8Array.from({ length: 20 }, (_, i) => i * 12);
    await sharp(grey, { raw: { width: 5, height: 4, channels: 1 } })
      .png()
      .toFile(`${root}/dog/2.png`);
    const rgba = Uint8Array.from({ length: 2 * 3 * 4 }, (_, i) => (i % 4 === 3 ? 128 : i * 9));
    await sharp(rgba, { raw: { width: 2, height: 3, channels: 4 } })
      .png()
      .toFile(`${root}/dog/3.png`);
    const archive = path.join(dir, 'classes.tar.gz');
    execFileSync('tar', ['-czf', archive, '-C', root, '.']);
    for (const p of [root, archive]) {
      const set = await openImageSet(p);
      expect(set.count, p).toBe(3);
      const [a, b, c] = await set.read(0, 3);
      expect(a.data).toEqual(cat);
      expect([b.width, b.height]).toEqual([5, 4]);
      expect(Array.from(b.data.subarray(0, 6))).toEqual([0, 0, 0, 12, 12, 12]);
      // Alpha is dropped, not blended: the colour channels come back as written.
      expect(Array.from(c.data.subarray(0, 6))).toEqual([0, 9, 18, 36, 45, 54]);
    }
  });

  it('an unreadable image is an error naming the file; missing and non-image paths too', async () => {
    const root = path.join(dir, 'bad');
    await png(`${root}/good.png`, 4, 4, 5);
    mkdirSync(root, { recursive: true });
    writeFileSync(`${root}/broken.png`, new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]));
    const set = await openImageSet(root);
    await expect(set.read(0, 2)).rejects.toThrow(new RegExp(`${root}/broken.png: cannot decode image`));
    await expect(openImageSet(path.join(dir, 'nope'))).rejects.toThrow(/image set not found: .*nope/);
    writeFileSync(path.join(dir, 'x.bin'), 'x');
    await expect(openImageSet(path.join(dir, 'x.bin'))).rejects.toThrow(/x\.bin: not a folder of images or a \.tar/);
    mkdirSync(path.join(dir, 'empty'));
    await expect(openImageSet(path.join(dir, 'empty'))).rejects.toThrow(/empty: no images found/);
  });

  it('images in memory (CHW, as the sampler writes them) come back as HWC', async () => {
    const chw = Uint8Array.from({ length: 2 * 3 * 2 * 2 }, (_, i) => i);
    const set = imageSetFromChw('mem', chw, 2, 2);
    const [second] = await set.read(1, 2);
    // Image 1, pixel 0: channels at offsets 12, 16, 20.
    expect(Array.from(second.data.subarray(0, 3))).toEqual([12, 16, 20]);
    expect(() => imageSetFromChw('mem', chw, 3, 2)).toThrow(/3 images of 3×2×2 need 36 bytes, got 24/);
  });
});
