/**
 * Batches in seeded epoch order: epoch e visits the data set in the permutation drawn from
 * (seed, e), `batch` images at a time, without replacement; image i of epoch e is mirrored iff
 * flipOf(seed, e, i). Everything is a function of (seed, epoch, position), so `restore(state())`
 * replays the same batches bit for bit. The next batch is decoded (off the main thread, by the
 * data set's pool) while the caller trains on the current one.
 */
import { DataError } from '../../io/formats/errors.js';
import type { ImageDataset } from './dataset.js';
import { epochPermutation, flipOf } from './random.js';

export interface LoaderState {
  seed: number;
  epoch: number;
  position: number;
}

export interface Batch {
  /** uint8 [count, 3, S, S] */
  images: Uint8Array;
  labels: Int32Array;
  count: number;
  /** Data set indices of the images (before flipping). */
  indices: Int32Array;
  /** 1 where the image was mirrored (what a token cache needs to pick the mirrored tokens). */
  flips: Uint8Array;
}

export interface LoaderOptions {
  batch: number;
  seed: number;
  flip: boolean;
  /** Drop an epoch's last partial batch (default true: static shapes for compiled steps). */
  dropLast?: boolean;
  /** Decode the images (default true); false yields indices, labels and flips only, e.g. when
   *  the encoder's tokens come from a TokenCache. */
  images?: boolean;
}

/** Mirrors image `i` of a [n, 3, S, S] uint8 batch in place (left ↔ right). */
export function mirrorInPlace(images: Uint8Array, i: number, size: number): void {
  const base = i * 3 * size * size;
  for (let row = 0; row < 3 * size; row++) {
    const o = base + row * size;
    for (let a = o, b = o + size - 1; a < b; a++, b--) {
      const t = images[a];
      images[a] = images[b];
      images[b] = t;
    }
  }
}

export class BatchLoader {
  private readonly batch: number;
  private readonly seed: number;
  private readonly flip: boolean;
  private readonly dropLast: boolean;
  private readonly decode: boolean;
  private epoch = 0;
  private position = 0;
  private perm: { epoch: number; order: Int32Array } | null = null;
  private prefetched: { key: string; batch: Promise<Batch> } | null = null;
  private closed = false;

  constructor(
    private ds: ImageDataset,
    opts: LoaderOptions,
  ) {
    if (!Number.isInteger(opts.batch) || opts.batch < 1) throw new DataError(`batch size must be a positive integer, got ${opts.batch}`);
    this.batch = opts.batch;
    this.seed = opts.seed >>> 0;
    this.flip = opts.flip;
    this.dropLast = opts.dropLast ?? true;
    this.decode = opts.images ?? true;
    if (ds.size === 0) throw new DataError(`data set ${ds.name} is empty`);
    if (this.dropLast && ds.size < this.batch)
      throw new DataError(`batch size ${this.batch} is larger than the data set (${ds.size} images of ${ds.name}); lower the batch size`);
  }

  /** Images per epoch actually visited. */
  get epochLength(): number {
    return this.dropLast ? Math.floor(this.ds.size / this.batch) * this.batch : this.ds.size;
  }

  private order(epoch: number): Int32Array {
    if (this.perm?.epoch !== epoch) this.perm = { epoch, order: epochPermutation(this.ds.size, this.seed, epoch) };
    return this.perm.order;
  }

  private async assemble(epoch: number, position: number): Promise<Batch> {
    const count = Math.min(this.batch, this.epochLength - position);
    const indices = this.order(epoch).slice(position, position + count);
    const flips = Uint8Array.from(indices, (i) => (this.flip && flipOf(this.seed, epoch, i) ? 1 : 0));
    const images = this.decode ? await this.ds.read(indices) : new Uint8Array(0);
    if (this.decode) for (let i = 0; i < count; i++) if (flips[i]) mirrorInPlace(images, i, this.ds.imageSize);
    const labels = Int32Array.from(indices, (i) => this.ds.labels[i]);
    return { images, labels, count, indices, flips };
  }

  private start(epoch: number, position: number): Promise<Batch> {
    const batch = this.assemble(epoch, position);
    // A prefetch that fails is reported when (if) it is awaited, never as an unhandled rejection.
    batch.catch(() => {});
    this.prefetched = { key: `${epoch}:${position}`, batch };
    return batch;
  }

  async next(): Promise<Batch> {
    if (this.closed) throw new Error('BatchLoader is closed');
    const key = `${this.epoch}:${this.position}`;
    const current = this.prefetched?.key === key ? this.prefetched.batch : this.start(this.epoch, this.position);
    this.position += Math.min(this.batch, this.epochLength - this.position);
    if (this.position >= this.epochLength) {
      this.epoch += 1;
      this.position = 0;
    }
    this.start(this.epoch, this.position);
    return current;
  }

  state(): LoaderState {
    return { seed: this.seed, epoch: this.epoch, position: this.position };
  }

  restore(s: LoaderState): void {
    if (s.seed >>> 0 !== this.seed) throw new DataError(`loader state was saved with data seed ${s.seed}, this run uses ${this.seed}`);
    if (
      !Number.isInteger(s.epoch) ||
      s.epoch < 0 ||
      !Number.isInteger(s.position) ||
      s.position < 0 ||
      s.position >= Math.max(1, this.epochLength)
    )
      throw new DataError(`loader state ${JSON.stringify(s)} does not fit this data set (${this.ds.size} images, batch ${this.batch})`);
    this.epoch = s.epoch;
    this.position = s.position;
    this.prefetched = null;
  }

  async close(): Promise<void> {
    this.closed = true;
    const p = this.prefetched;
    this.prefetched = null;
    if (p) await p.batch.catch(() => {});
  }
}
