/**
 * Sets of images to measure: a folder of image files (flat, or with class subfolders) or a
 * .tar / .tar.gz / .tgz archive of one (src/io/formats does the listing), or images already in
 * memory (a run's reconstructions and samples). Images keep their own sizes — the feature
 * network resizes each one — and are decoded only when a batch asks for them, so a set of
 * thousands never sits decoded in memory.
 *
 * A folder holding split folders (`train/`, `test/`) is read as the data pipeline reads it: the
 * `split` option picks one (default 'train'); without split folders every image belongs to the set.
 */
import { existsSync, statSync } from 'node:fs';
import sharp from 'sharp';
import { DataError } from '../io/formats/errors.js';
import { openImageArchive, openImageFolder } from '../io/formats/folder.js';
import type { RawImage } from '../io/formats/image-ops.js';
import type { RecordSource } from '../io/formats/source.js';
import type { InceptionImage } from './inception.js';

export interface ImageSource {
  /** Short name for messages and cache keys (folder / archive name, or a label). */
  readonly name: string;
  readonly count: number;
  /** Images start … end − 1, decoded to u8 RGB (HWC) at their own size. */
  read(start: number, end: number): Promise<InceptionImage[]>;
  close(): Promise<void>;
}

const ARCHIVE = /\.(tar\.gz|tgz|tar)$/i;

/** Decodes one encoded image (any format sharp reads) or raw pixels to u8 RGB HWC. */
export async function decodeToRgb(raw: RawImage, where: string): Promise<InceptionImage> {
  try {
    if (raw.kind === 'encoded') {
      // failOn 'warning': a truncated JPEG must be an error, not a half-grey image.
      const { data, info } = await sharp(raw.bytes, { failOn: 'warning' })
        .removeAlpha()
        .toColourspace('srgb')
        .raw({ depth: 'uchar' })
        .toBuffer({ resolveWithObject: true });
      if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels, expected 3`);
      return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), height: info.height, width: info.width };
    }
    const { bytes, width, height, channels, planar } = raw;
    if (bytes.length !== width * height * channels) throw new Error(`expected ${width * height * channels} bytes, got ${bytes.length}`);
    const plane = width * height;
    const out = new Uint8Array(plane * 3);
    for (let p = 0; p < plane; p++)
      for (let c = 0; c < 3; c++) {
        const ch = channels === 1 ? 0 : c;
        out[p * 3 + c] = planar ? bytes[ch * plane + p] : bytes[p * channels + ch];
      }
    return { data: out, height, width };
  } catch (e) {
    throw new DataError(`${where}: cannot decode image (${(e as Error).message ?? e})`);
  }
}

/** Wraps a record source (folder or archive listing) as an image set decoded per batch. */
export function imageSetFromRecords(src: RecordSource): ImageSource {
  return {
    name: src.name,
    count: src.labels.length,
    read: async (start, end) => {
      const idx = Array.from({ length: end - start }, (_, i) => start + i);
      const raws = await src.load(idx);
      return Promise.all(raws.map((r, i) => decodeToRgb(r, src.describe(idx[i]))));
    },
    close: () => src.close(),
  };
}

/** A folder or archive of images; DataError (one line, naming the path) when it is not one. */
export async function openImageSet(p: string, opts: { split?: string } = {}): Promise<ImageSource> {
  if (!existsSync(p)) throw new DataError(`image set not found: ${p}`);
  const split = opts.split ?? 'train';
  if (statSync(p).isDirectory()) return imageSetFromRecords(openImageFolder(p, split));
  if (ARCHIVE.test(p)) return imageSetFromRecords(await openImageArchive(p, split));
  throw new DataError(`${p}: not a folder of images or a .tar/.tar.gz/.tgz archive of one`);
}

/** Images already in memory: u8 [n, 3, S, S] (CHW), as the data pipeline and the sampler produce. */
export function imageSetFromChw(name: string, images: Uint8Array, count: number, size: number): ImageSource {
  const per = 3 * size * size;
  if (images.length !== count * per)
    throw new RangeError(`${name}: ${count} images of 3×${size}×${size} need ${count * per} bytes, got ${images.length}`);
  return {
    name,
    count,
    read: async (start, end) => {
      const out: InceptionImage[] = [];
      for (let i = start; i < end; i++)
        out.push(
          await decodeToRgb(
            { kind: 'pixels', bytes: images.subarray(i * per, (i + 1) * per), width: size, height: size, channels: 3, planar: true },
            `${name} image ${i}`,
          ),
        );
      return out;
    },
    close: async () => {},
  };
}
