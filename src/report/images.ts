/**
 * PNG files → data: URIs for the self-contained report. Each image is decoded once to check it is
 * whole (a run killed mid-write leaves a truncated file, which a browser would show as a broken
 * icon); large ones are downscaled, and a budget caps the report's total size.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';

export interface InlineImage {
  uri: string;
  width: number;
  height: number;
  bytes: number;
  downscaled: boolean;
}

/** Bytes of PNG data the report may still inline. */
export class ImageBudget {
  constructor(public left: number) {}
}

export interface InlineOptions {
  /** Wider images are downscaled to this width. */
  maxWidth: number;
  /** Larger files are re-encoded (downscaled by half until they fit, at most three times). */
  maxBytes: number;
}

export async function inlinePng(file: string, budget: ImageBudget, opts: InlineOptions): Promise<InlineImage | { error: string }> {
  const name = path.basename(file);
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    return { error: `${name} could not be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})` };
  }
  let width: number;
  let height: number;
  try {
    const meta = await sharp(bytes).metadata();
    if (meta.format !== 'png') return { error: `${name} is not a PNG file` };
    // Decoding the whole image is what finds a truncated file; the header alone reads fine.
    await sharp(bytes, { failOn: 'truncated' }).raw().toBuffer();
    width = meta.width;
    height = meta.height;
  } catch (e) {
    return { error: `${name} is damaged (${(e as Error).message})` };
  }
  let downscaled = false;
  let target = Math.min(width, opts.maxWidth);
  for (let tries = 0; (target < width || bytes.length > opts.maxBytes) && tries < 4; tries++) {
    const out = await sharp(bytes)
      .resize({ width: target, fit: 'inside' })
      .png({ compressionLevel: 9 })
      .toBuffer({ resolveWithObject: true });
    bytes = out.data;
    width = out.info.width;
    height = out.info.height;
    downscaled = true;
    target = Math.max(16, Math.floor(width / 2));
  }
  if (bytes.length > budget.left) return { error: `${name} left out: the report's image budget is spent` };
  budget.left -= bytes.length;
  return { uri: `data:image/png;base64,${bytes.toString('base64')}`, width, height, bytes: bytes.length, downscaled };
}
