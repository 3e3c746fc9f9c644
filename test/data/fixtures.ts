/** Small data sets written by the tests themselves (sharp-written PNG/JPEG, CIFAR-10 binary, IDX). */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import sharp from 'sharp';
import * as tar from 'tar';

const made: string[] = [];

export function tempDir(tag: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), `rae-data-${tag}-`));
  made.push(dir);
  return dir;
}

/** Removes the folders tempDir made (call from afterAll). */
export function removeTempDirs(): void {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** Deterministic pseudo-random HWC uint8 pixels. */
export function pixels(w: number, h: number, channels: number, seed: number): Uint8Array {
  const out = new Uint8Array(w * h * channels);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < out.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = (s >>> 0) & 255;
  }
  return out;
}

export async function writeImage(file: string, rgb: Uint8Array, w: number, h: number, format: 'png' | 'jpeg'): Promise<void> {
  mkdirSync(path.dirname(file), { recursive: true });
  const img = sharp(rgb, { raw: { width: w, height: h, channels: 3 } });
  await (format === 'png' ? img.png() : img.jpeg({ quality: 90 })).toFile(file);
}

export interface FolderImage {
  rel: string; // path relative to the root
  rgb: Uint8Array;
  w: number;
  h: number;
}

/** Writes `<root>/<split>/<class>/<k>.png|jpg` for counts[class] images of assorted sizes. */
export async function writeFolder(
  root: string,
  split: string,
  counts: Record<string, number>,
  format: 'png' | 'jpeg' = 'png',
): Promise<FolderImage[]> {
  const written: FolderImage[] = [];
  let seed = 1;
  for (const [cls, n] of Object.entries(counts)) {
    for (let k = 0; k < n; k++, seed++) {
      const w = 12 + (seed % 5) * 3;
      const h = 10 + (seed % 3) * 4;
      const rgb = pixels(w, h, 3, seed * 7919);
      const rel = `${split}/${cls}/${String(k).padStart(3, '0')}.${format === 'png' ? 'png' : 'jpg'}`;
      await writeImage(path.join(root, rel), rgb, w, h, format);
      written.push({ rel, rgb, w, h });
    }
  }
  return written;
}

export async function writeTarGz(dir: string, file: string): Promise<void> {
  await tar.c({ gzip: true, file, cwd: dir }, ['.']);
}

/** CIFAR-10 binary batch: each record's pixels derived from its global index (all distinct). */
export function writeCifarBatch(file: string, labels: number[], firstIndex: number): Uint8Array[] {
  const recs: Uint8Array[] = [];
  const buf = new Uint8Array(labels.length * 3073);
  labels.forEach((label, r) => {
    const chw = pixels(32, 32, 3, 1000 + firstIndex + r);
    buf[r * 3073] = label;
    buf.set(chw, r * 3073 + 1);
    recs.push(chw);
  });
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, buf);
  return recs;
}

export function idxBytes(magic: number, dims: number[], data: Uint8Array): Uint8Array {
  const head = new DataView(new ArrayBuffer(4 + 4 * dims.length));
  head.setUint32(0, magic);
  dims.forEach((d, i) => head.setUint32(4 + 4 * i, d));
  const out = new Uint8Array(head.byteLength + data.length);
  out.set(new Uint8Array(head.buffer), 0);
  out.set(data, head.byteLength);
  return out;
}

/** `<prefix>-images-idx3-ubyte[.gz]` + labels, n grey w×h images. */
export function writeIdx(dir: string, prefix: string, labels: number[], w: number, h: number, gz: boolean): Uint8Array {
  mkdirSync(dir, { recursive: true });
  const data = pixels(w, h, labels.length, 4242 + labels.length);
  const ext = gz ? '.gz' : '';
  const enc = (b: Uint8Array) => (gz ? gzipSync(b) : b);
  writeFileSync(path.join(dir, `${prefix}-images-idx3-ubyte${ext}`), enc(idxBytes(0x803, [labels.length, h, w], data)));
  writeFileSync(path.join(dir, `${prefix}-labels-idx1-ubyte${ext}`), enc(idxBytes(0x801, [labels.length], Uint8Array.from(labels))));
  return data;
}
