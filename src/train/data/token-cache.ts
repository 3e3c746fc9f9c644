/**
 * The frozen encoder's tokens cached on disk, so stage 2 does not re-encode every image every
 * epoch. Sharded safetensors: `tokens-<first:08d>.safetensors` holds, for `shardImages` consecutive
 * data set images, `tokens` [k, ...tokenShape] (f32) and, with flips, `mirrored` (the tokens of
 * the mirrored images). `cache.json` is written last: a folder without it (or with another
 * fingerprint) is rebuilt; shards already written by an interrupted build, with the right
 * fingerprint and range in their metadata, are kept. Rows are read by positioned reads, so a
 * batch touches only its own images' bytes.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { openSafetensors, saveSafetensors } from '../../io/safetensors.js';
import { DataError } from '../../io/formats/errors.js';
import type { ImageDataset } from './dataset.js';
import { mirrorInPlace } from './loader.js';

/** uint8 [n, 3, S, S] → f32 tokens [n, ...tokenShape], flattened. */
export type TokenEncoder = (images: Uint8Array, n: number) => Promise<Float32Array>;

export interface TokenCacheOptions {
  /** Hash of everything the tokens depend on (encoder weights and settings, data, image size). */
  fingerprint: string;
  /** Token shape of one image, e.g. [256, 768]. */
  tokenShape: number[];
  /** Also cache the tokens of mirrored images (for training with flips). */
  flips: boolean;
  /** Images per encoder call (default 32). */
  batch?: number;
  /** Images per shard (default 1024). */
  shardImages?: number;
  onProgress?: (done: number, total: number) => void;
}

interface Manifest {
  fingerprint: string;
  size: number;
  tokenShape: number[];
  flips: boolean;
  shardImages: number;
}

const MANIFEST = 'cache.json';
const shardName = (first: number) => `tokens-${String(first).padStart(8, '0')}.safetensors`;

function shardIsValid(file: string, fingerprint: string, first: number, count: number, flips: boolean, tokenShape: number[]): boolean {
  if (!existsSync(file)) return false;
  try {
    const f = openSafetensors(file);
    try {
      const m = f.metadata;
      const shapeOk = (name: string) => f.has(name) && JSON.stringify(f.info(name).shape) === JSON.stringify([count, ...tokenShape]);
      return (
        m.fingerprint === fingerprint &&
        m.first === String(first) &&
        m.count === String(count) &&
        shapeOk('tokens') &&
        (!flips || shapeOk('mirrored'))
      );
    } finally {
      f.close();
    }
  } catch {
    return false; // a torn or foreign file: rebuild it
  }
}

export class TokenCache {
  private fds = new Map<number, { fd: number; offsets: Record<string, number> }>();

  private constructor(
    readonly dir: string,
    private manifest: Manifest,
  ) {}

  get size(): number {
    return this.manifest.size;
  }
  get tokenShape(): number[] {
    return this.manifest.tokenShape;
  }
  get flips(): boolean {
    return this.manifest.flips;
  }

  /** Opens the cache in `dir` if it is complete and matches the fingerprint, else null. */
  static open(dir: string, fingerprint: string): TokenCache | null {
    const file = path.join(dir, MANIFEST);
    if (!existsSync(file)) return null;
    let m: Manifest;
    try {
      m = JSON.parse(readFileSync(file, 'utf8'));
    } catch {
      return null;
    }
    return m.fingerprint === fingerprint ? new TokenCache(dir, m) : null;
  }

  /** Opens a matching cache or builds it (resuming an interrupted build), encoding `ds` in order. */
  static async build(dir: string, ds: ImageDataset, encode: TokenEncoder, opts: TokenCacheOptions): Promise<TokenCache> {
    const found = TokenCache.open(dir, opts.fingerprint);
    if (found && found.size === ds.size) return found;
    mkdirSync(dir, { recursive: true });
    const perImage = opts.tokenShape.reduce((a, b) => a * b, 1);
    const shardImages = opts.shardImages ?? 1024;
    const batch = opts.batch ?? 32;
    for (let first = 0; first < ds.size; first += shardImages) {
      const count = Math.min(shardImages, ds.size - first);
      const file = path.join(dir, shardName(first));
      if (!shardIsValid(file, opts.fingerprint, first, count, opts.flips, opts.tokenShape)) {
        const tokens = new Float32Array(count * perImage);
        const mirrored = opts.flips ? new Float32Array(count * perImage) : null;
        for (let s = 0; s < count; s += batch) {
          const n = Math.min(batch, count - s);
          const images = await ds.read(Array.from({ length: n }, (_, i) => first + s + i));
          tokens.set(checked(await encode(images, n), n * perImage), s * perImage);
          if (mirrored) {
            for (let i = 0; i < n; i++) mirrorInPlace(images, i, ds.imageSize);
            mirrored.set(checked(await encode(images, n), n * perImage), s * perImage);
          }
          opts.onProgress?.(first + s + n, ds.size);
        }
        const tensors: Record<string, { shape: number[]; data: Float32Array }> = {
          tokens: { shape: [count, ...opts.tokenShape], data: tokens },
        };
        if (mirrored) tensors.mirrored = { shape: [count, ...opts.tokenShape], data: mirrored };
        saveSafetensors(file, tensors, { fingerprint: opts.fingerprint, first: String(first), count: String(count) });
      } else {
        opts.onProgress?.(first + count, ds.size);
      }
    }
    const manifest: Manifest = {
      fingerprint: opts.fingerprint,
      size: ds.size,
      tokenShape: opts.tokenShape,
      flips: opts.flips,
      shardImages,
    };
    const tmp = path.join(dir, `${MANIFEST}.${process.pid}.tmp`);
    writeFileSync(tmp, JSON.stringify(manifest, null, 1));
    renameSync(tmp, path.join(dir, MANIFEST));
    return new TokenCache(dir, manifest);
  }

  private shard(first: number): { fd: number; offsets: Record<string, number> } {
    let s = this.fds.get(first);
    if (!s) {
      const file = path.join(this.dir, shardName(first));
      const f = openSafetensors(file);
      const offsets: Record<string, number> = {};
      for (const name of f.keys()) offsets[name] = f.info(name).byteOffset;
      f.close();
      s = { fd: openSync(file, 'r'), offsets };
      this.fds.set(first, s);
    }
    return s;
  }

  /** Tokens of the given images, mirrored where `flips[i]` is 1: f32 [n, ...tokenShape]. */
  read(indices: ArrayLike<number>, flips?: ArrayLike<number>): Float32Array {
    const perImage = this.tokenShape.reduce((a, b) => a * b, 1);
    const out = new Float32Array(indices.length * perImage);
    const bytes = new Uint8Array(out.buffer);
    const rowBytes = perImage * 4;
    for (let i = 0; i < indices.length; i++) {
      const idx = indices[i];
      if (!Number.isInteger(idx) || idx < 0 || idx >= this.size)
        throw new RangeError(`token cache: index ${idx} out of range [0, ${this.size})`);
      const mirrored = flips ? flips[i] !== 0 : false;
      if (mirrored && !this.flips) throw new DataError(`token cache ${this.dir} holds no mirrored tokens (built without flips)`);
      const first = idx - (idx % this.manifest.shardImages);
      const s = this.shard(first);
      const pos = s.offsets[mirrored ? 'mirrored' : 'tokens'] + (idx - first) * rowBytes;
      for (let done = 0; done < rowBytes; ) {
        const n = readSync(s.fd, bytes, i * rowBytes + done, rowBytes - done, pos + done);
        if (n === 0) throw new DataError(`${path.join(this.dir, shardName(first))}: truncated`);
        done += n;
      }
    }
    return out;
  }

  close(): void {
    for (const s of this.fds.values()) closeSync(s.fd);
    this.fds.clear();
  }
}

function checked(tokens: Float32Array, want: number): Float32Array {
  if (tokens.length !== want) throw new RangeError(`token encoder returned ${tokens.length} values, expected ${want} (check tokenShape)`);
  return tokens;
}
