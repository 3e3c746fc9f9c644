/**
 * The data pipeline: open a data set in any supported format, hold out a class-stratified
 * evaluation split, keep crops as uint8 in memory or stream them from disk, and batch them.
 *
 * Memory: when the crops of the used images (train + held out, 3·S² bytes each) fit
 * `memoryBudget`, they are decoded once at open (so a bad file is reported before training) and
 * held as uint8. Otherwise each read decodes its images again: image folders are then read from
 * disk per batch; CIFAR-10 batches and IDX files are held as their raw bytes (uint8 at native
 * size); archives keep the split's encoded (compressed) files in memory, a fraction of the
 * decoded size; a data set too big even for that should be unpacked to a folder.
 * Decoding (sharp + the ADM crop) runs in worker threads; results are identical to the main
 * thread's, which is the fallback.
 */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findCifarDir, openCifar10Binary } from '../../io/formats/cifar.js';
import { DataError } from '../../io/formats/errors.js';
import { openImageArchive, openImageFolder } from '../../io/formats/folder.js';
import { isIdxDir, openIdx } from '../../io/formats/idx.js';
import type { RecordSource } from '../../io/formats/source.js';
import { tensor } from '../../tensor/creation.js';
import type { Tensor } from '../../tensor/tensor.js';
import { type ImageDataset, MemoryStore, RecordDataset, RecordDecoder } from './dataset.js';
import { defaultWorkerCount, sharedDecodePool } from './pool.js';
import { Rng, STREAM, stratifiedPick } from './random.js';

export { DataError } from '../../io/formats/errors.js';
export type { ImageDataset, Skipped } from './dataset.js';
export { BatchLoader, type Batch, type LoaderOptions, type LoaderState } from './loader.js';
export { closeSharedDecodePools } from './pool.js';
export { TokenCache, type TokenCacheOptions, type TokenEncoder } from './token-cache.js';

export type DatasetFormat = 'auto' | 'folder' | 'archive' | 'cifar10-bin' | 'idx';

export interface DatasetSpec {
  /** A folder, a .tar.gz of a folder, a CIFAR-10 binary folder, or a folder of IDX files. */
  source: string;
  format?: DatasetFormat;
  /** ADM centre crop + resize to this (square). */
  imageSize: number;
  split?: 'train' | 'test';
  /** Images held out for evaluation (seeded, class-stratified), taken before `maxImages`. */
  heldOut?: number;
  /** Cap on training images (seeded, class-stratified subset of what is not held out). */
  maxImages?: number;
  /** Skip unreadable files (listed in `skipped`) instead of failing. */
  skipBad?: boolean;
  seed?: number;
  /** Decoded crops (uint8) above this many bytes are decoded per read instead of held in
   *  memory (default 1 GiB). */
  memoryBudget?: number;
  /** Decode worker threads; 0 decodes on the main thread (default: cores − 1, at least 1). */
  workers?: number;
}

const ARCHIVE = /\.(tar\.gz|tgz|tar)$/i;

function detectFormat(source: string): Exclude<DatasetFormat, 'auto'> {
  if (!existsSync(source)) throw new DataError(`data set not found: ${source}`);
  const st = statSync(source);
  if (st.isFile()) {
    if (ARCHIVE.test(source)) return 'archive';
    if (/idx\d-ubyte(\.gz)?$/.test(source)) return 'idx';
    throw new DataError(`${source}: not a data set (expected a folder, a .tar.gz archive, CIFAR-10 batches or IDX files)`);
  }
  if (findCifarDir(source)) return 'cifar10-bin';
  if (isIdxDir(source)) return 'idx';
  return 'folder';
}

async function openSource(spec: DatasetSpec, split: string): Promise<RecordSource> {
  const format = !spec.format || spec.format === 'auto' ? detectFormat(spec.source) : spec.format;
  switch (format) {
    case 'folder':
      return openImageFolder(spec.source, split);
    case 'archive':
      return openImageArchive(spec.source, split);
    case 'cifar10-bin':
      return openCifar10Binary(spec.source, split);
    case 'idx':
      return openIdx(spec.source, split);
    default:
      throw new DataError(`unknown data format '${format}' (auto, folder, archive, cifar10-bin, idx)`);
  }
}

function checkCount(name: string, v: number | undefined): number | undefined {
  if (v !== undefined && (!Number.isInteger(v) || v < 0)) throw new DataError(`${name} must be a non-negative integer, got ${v}`);
  return v;
}

export async function openDataset(spec: DatasetSpec): Promise<{ train: ImageDataset; heldOut: ImageDataset }> {
  const size = spec.imageSize;
  if (!Number.isInteger(size) || size < 1) throw new DataError(`imageSize must be a positive integer, got ${size}`);
  const heldOut = checkCount('heldOut', spec.heldOut) ?? 0;
  const maxImages = checkCount('maxImages', spec.maxImages);
  if (maxImages === 0) throw new DataError('maxImages must be at least 1');
  const workers = checkCount('workers', spec.workers) ?? defaultWorkerCount();
  const seed = (spec.seed ?? 0) >>> 0;
  const split = spec.split ?? 'train';

  const source = await openSource(spec, split);
  const n = source.labels.length;
  if (heldOut >= n) throw new DataError(`${spec.source}: heldOut ${heldOut} leaves no training images (the ${split} split has ${n})`);
  const all = Int32Array.from({ length: n }, (_, i) => i);
  const held = stratifiedPick(all, source.labels, heldOut, new Rng(seed, STREAM.heldOut));
  let train = held.rest;
  if (maxImages !== undefined && maxImages < train.length)
    train = stratifiedPick(train, source.labels, maxImages, new Rng(seed, STREAM.subset)).picked;

  const pool = workers > 0 ? sharedDecodePool(workers) : null;
  const decoder = new RecordDecoder(source, size, pool, spec.skipBad ?? false);
  const decodedBytes = (train.length + held.picked.length) * 3 * size * size;
  if (decodedBytes > (spec.memoryBudget ?? 2 ** 30)) {
    return { train: new RecordDataset(train, decoder, null), heldOut: new RecordDataset(held.picked, decoder, null) };
  }
  const used = Int32Array.from([...held.picked, ...train]);
  const store = new MemoryStore(decoder, used);
  const bad = await store.fill(used);
  const keep = (recs: Int32Array) => (bad.size ? recs.filter((r) => !bad.has(r)) : recs);
  const trainKept = keep(train);
  if (trainKept.length === 0) throw new DataError(`${spec.source}: no decodable training images`);
  return {
    train: new RecordDataset(trainKept, decoder, store, train),
    heldOut: new RecordDataset(keep(held.picked), decoder, store, held.picked),
  };
}

/** uint8 [n, 3, S, S] → f32 tensor in [0, 1] of that shape (converted on the host, uploaded once). */
export function imagesToTensor(bytes: Uint8Array, n: number, size: number): Tensor {
  const count = n * 3 * size * size;
  if (bytes.length < count) throw new RangeError(`imagesToTensor: ${bytes.length} bytes for [${n}, 3, ${size}, ${size}]`);
  const f = new Float32Array(count);
  for (let i = 0; i < count; i++) f[i] = bytes[i] / 255;
  return tensor(f, [n, 3, size, size]);
}

/** The package root (the folder holding our package.json), found from this module's location. */
function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) return process.cwd();
    dir = up;
  }
}

export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/** Default demo data: CIFAR-10 from ../shared/datasets (next to the package) when present, else
 *  Fashion-MNIST from Debian's dataset-fashion-mnist package. */
export function defaultDataSource(): { source: string; name: string } {
  const cifar = path.resolve(packageRoot(), '..', 'shared', 'datasets', 'cifar10-jpeg.tar.gz');
  if (existsSync(cifar)) return { source: cifar, name: 'cifar10' };
  if (existsSync(FASHION_MNIST_DIR)) return { source: FASHION_MNIST_DIR, name: 'fashion-mnist' };
  throw new DataError(
    `no default data: neither ${cifar} nor ${FASHION_MNIST_DIR} (install Debian's dataset-fashion-mnist: scripts/setup-system.sh) exists; pass --data`,
  );
}
