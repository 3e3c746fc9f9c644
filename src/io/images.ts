/** Image files ↔ float pixels in [0, 1], [3, H, W] planar (CHW), via pngjs and jpeg-js. */
import { readFileSync, writeFileSync } from 'node:fs';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';

export interface Image {
  width: number;
  height: number;
  /** [3, H, W] row-major, values in [0, 1]. */
  data: Float32Array;
}

function fromRGBA(rgba: Uint8Array | Buffer, width: number, height: number): Image {
  const data = new Float32Array(3 * width * height);
  const hw = width * height;
  for (let i = 0; i < hw; i++) for (let c = 0; c < 3; c++) data[c * hw + i] = rgba[4 * i + c] / 255;
  return { width, height, data };
}

/** Decodes a JPEG or PNG file (by signature, not by name). */
export function decodeImage(bytes: Uint8Array, name = '<image>'): Image {
  if (bytes[0] === 0xff && bytes[1] === 0xd8) {
    const d = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxMemoryUsageInMB: 256 });
    return fromRGBA(d.data, d.width, d.height);
  }
  if (bytes[0] === 0x89 && bytes[1] === 0x50) {
    const p = PNG.sync.read(Buffer.from(bytes));
    return fromRGBA(p.data, p.width, p.height);
  }
  throw new Error(`${name}: not a JPEG or PNG file`);
}

export function readImage(path: string): Image {
  return decodeImage(readFileSync(path), path);
}

/** Writes [3, H, W] pixels in [0, 1] (clamped; quantised by rounding) as PNG. */
export function writePng(path: string, img: Image): void {
  const { width, height, data } = img;
  const png = new PNG({ width, height });
  const hw = width * height;
  for (let i = 0; i < hw; i++) {
    for (let c = 0; c < 3; c++) png.data[4 * i + c] = Math.round(Math.min(1, Math.max(0, data[c * hw + i])) * 255);
    png.data[4 * i + 3] = 255;
  }
  writeFileSync(path, PNG.sync.write(png));
}

/** Tiles B images [B, 3, H, W] into a grid image with `cols` columns and a 2-pixel gutter. */
export function imageGrid(batch: Float32Array, B: number, H: number, W: number, cols = Math.ceil(Math.sqrt(B))): Image {
  const rows = Math.ceil(B / cols);
  const gap = 2;
  const width = cols * W + (cols + 1) * gap;
  const height = rows * H + (rows + 1) * gap;
  const data = new Float32Array(3 * width * height).fill(1);
  for (let b = 0; b < B; b++) {
    const ox = gap + (b % cols) * (W + gap);
    const oy = gap + Math.floor(b / cols) * (H + gap);
    for (let c = 0; c < 3; c++)
      for (let y = 0; y < H; y++)
        for (let x = 0; x < W; x++) data[c * width * height + (oy + y) * width + ox + x] = batch[((b * 3 + c) * H + y) * W + x];
  }
  return { width, height, data };
}
