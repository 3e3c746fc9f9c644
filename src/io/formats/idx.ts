/**
 * MNIST-style IDX files, gzipped or not: `<prefix>-images-idx3-ubyte[.gz]` (magic 0x00000803,
 * then count, rows, cols as big-endian u32, then count×rows×cols bytes) and
 * `<prefix>-labels-idx1-ubyte[.gz]` (magic 0x00000801, count, then count bytes); prefix `train`
 * or `t10k` (test). Grey images become three equal channels downstream.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { DataError } from './errors.js';
import type { RawImage } from './image-ops.js';
import type { RecordSource } from './source.js';

const FASHION_CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

function findFile(dir: string, prefix: string, kind: 'images-idx3' | 'labels-idx1'): string | null {
  for (const f of readdirSync(dir).sort()) {
    if (f.startsWith(`${prefix}-${kind}-ubyte`) || f.startsWith(`${prefix}-${kind.replace('-', '.')}-ubyte`)) return path.join(dir, f);
  }
  return null;
}

/** True when `dir` holds IDX image files. */
export function isIdxDir(dir: string): boolean {
  return existsSync(dir) && statSync(dir).isDirectory() && readdirSync(dir).some((f) => /-images[-.]idx3-ubyte(\.gz)?$/.test(f));
}

function readIdx(file: string, magic: number): { dims: number[]; data: Uint8Array } {
  let buf: Uint8Array = readFileSync(file);
  if (buf[0] === 0x1f && buf[1] === 0x8b) {
    try {
      buf = gunzipSync(buf);
    } catch (e) {
      throw new DataError(`${file}: cannot decompress (${(e as Error).message})`);
    }
  }
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (buf.length < 8 || view.getUint32(0) !== magic)
    throw new DataError(`${file}: not an IDX file of the expected kind (magic 0x${magic.toString(16).padStart(8, '0')})`);
  const rank = magic & 0xff;
  const dims: number[] = [];
  for (let d = 0; d < rank; d++) dims.push(view.getUint32(4 + 4 * d));
  const start = 4 + 4 * rank;
  const need = dims.reduce((a, b) => a * b, 1);
  if (buf.length - start < need) throw new DataError(`${file}: truncated (${buf.length - start} data bytes, header says ${need})`);
  return { dims, data: buf.subarray(start, start + need) };
}

/** Opens `dir` (or the folder of an images file) as an IDX data set. */
export function openIdx(source: string, split: string): RecordSource {
  if (!existsSync(source)) throw new DataError(`data set not found: ${source}`);
  const dir = statSync(source).isDirectory() ? source : path.dirname(source);
  const prefix = split === 'test' ? 't10k' : 'train';
  const imagesFile = findFile(dir, prefix, 'images-idx3');
  const labelsFile = findFile(dir, prefix, 'labels-idx1');
  if (!imagesFile || !labelsFile)
    throw new DataError(`${dir}: no ${prefix}-images-idx3-ubyte[.gz] / ${prefix}-labels-idx1-ubyte[.gz] pair`);
  const images = readIdx(imagesFile, 0x00000803);
  const labelsIdx = readIdx(labelsFile, 0x00000801);
  const [count, height, width] = images.dims;
  if (labelsIdx.dims[0] !== count) throw new DataError(`${labelsFile}: ${labelsIdx.dims[0]} labels for ${count} images in ${imagesFile}`);
  const labels = Int32Array.from(labelsIdx.data);
  const fashion = /fashion/i.test(path.resolve(dir));
  const numClasses = labels.reduce((m, v) => Math.max(m, v), 0) + 1;
  const classes =
    fashion && numClasses <= 10
      ? FASHION_CLASSES.slice(0, Math.max(numClasses, 10))
      : Array.from({ length: numClasses }, (_, k) => String(k));
  const per = width * height;
  return {
    name: fashion ? 'fashion-mnist' : /mnist/i.test(path.resolve(dir)) ? 'mnist' : path.basename(path.resolve(dir)),
    source,
    classes,
    labels,
    describe: (i) => `${imagesFile} image ${i}`,
    load: async (indices) =>
      Array.from(
        indices,
        (i): RawImage => ({
          kind: 'pixels',
          bytes: images.data.subarray(i * per, (i + 1) * per),
          width,
          height,
          channels: 1,
          planar: false,
        }),
      ),
    close: async () => {},
  };
}
