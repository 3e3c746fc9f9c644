/** TokenCache: sharded safetensors of encoder tokens (plain and mirrored), resumable, fingerprinted. */
import { afterAll, describe, expect, it } from 'vitest';
import { type ImageDataset, DataError, TokenCache } from '../../src/train/data/index.js';
import { mirrorInPlace } from '../../src/train/data/loader.js';
import { removeTempDirs, tempDir } from './fixtures.js';

afterAll(() => removeTempDirs());

const S = 4;
const per = 3 * S * S;

function dataset(n: number): ImageDataset {
  return {
    name: 'fake',
    size: n,
    imageSize: S,
    classes: ['x'],
    labels: new Int32Array(n),
    skipped: [],
    read: async (indices) => {
      const out = new Uint8Array(indices.length * per);
      Array.from(indices).forEach((idx, j) => {
        for (let p = 0; p < per; p++) out[j * per + p] = (idx * 13 + p * p) & 255;
      });
      return out;
    },
  };
}

/** Tokens [3, 2] per image: per channel, the sums of the left and right halves (mirroring swaps them). */
function encoder(calls: { images: number }, failAfter = Infinity) {
  return async (images: Uint8Array, n: number): Promise<Float32Array> => {
    if (calls.images + n > failAfter) throw new Error('encoder interrupted');
    calls.images += n;
    const out = new Float32Array(n * 6);
    for (let i = 0; i < n; i++)
      for (let c = 0; c < 3; c++)
        for (let y = 0; y < S; y++)
          for (let x = 0; x < S; x++) out[i * 6 + c * 2 + (x < S / 2 ? 0 : 1)] += images[i * per + (c * S + y) * S + x] / 7;
    return out;
  };
}

async function expected(ds: ImageDataset, idx: number, mirrored: boolean): Promise<Float32Array> {
  const img = await ds.read([idx]);
  if (mirrored) mirrorInPlace(img, 0, S);
  return encoder({ images: 0 })(img, 1);
}

describe('TokenCache', () => {
  const opts = { fingerprint: 'enc-A', tokenShape: [3, 2], flips: true, batch: 3, shardImages: 4 };

  it('stores plain and mirrored tokens across shards and reads any rows back exactly', async () => {
    const ds = dataset(10);
    const dir = tempDir('tokens');
    const calls = { images: 0 };
    const cache = await TokenCache.build(dir, ds, encoder(calls), opts);
    expect(calls.images).toBe(20); // 10 plain + 10 mirrored
    expect([cache.size, cache.tokenShape, cache.flips]).toEqual([10, [3, 2], true]);
    const idx = [7, 2, 9, 0, 4];
    const flips = [1, 0, 1, 0, 1];
    const got = cache.read(idx, flips);
    for (let i = 0; i < idx.length; i++) expect(got.subarray(i * 6, (i + 1) * 6)).toEqual(await expected(ds, idx[i], flips[i] === 1));
    // Mirrored tokens really differ (the halves swap).
    expect(cache.read([3], [1])).not.toEqual(cache.read([3], [0]));
    cache.close();
  });

  it('reopens a complete cache without encoding; another fingerprint rebuilds', async () => {
    const ds = dataset(6);
    const dir = tempDir('tokens-reuse');
    await TokenCache.build(dir, ds, encoder({ images: 0 }), opts);
    const again = { images: 0 };
    (await TokenCache.build(dir, ds, encoder(again), opts)).close();
    expect(again.images).toBe(0);
    expect(TokenCache.open(dir, 'enc-B')).toBeNull();
    const other = { images: 0 };
    (await TokenCache.build(dir, ds, encoder(other), { ...opts, fingerprint: 'enc-B' })).close();
    expect(other.images).toBe(12);
  });

  it('an interrupted build keeps its finished shards and resumes after them', async () => {
    const ds = dataset(10);
    const dir = tempDir('tokens-resume');
    await expect(TokenCache.build(dir, ds, encoder({ images: 0 }, 11), opts)).rejects.toThrow('encoder interrupted');
    expect(TokenCache.open(dir, 'enc-A')).toBeNull(); // no manifest yet
    const resumed = { images: 0 };
    const cache = await TokenCache.build(dir, ds, encoder(resumed), opts);
    expect(resumed.images).toBe(20 - 8); // the first shard (4 images, plain + mirrored) was kept
    expect(cache.read([1, 8], [1, 0])).toEqual(Float32Array.from([...(await expected(ds, 1, true)), ...(await expected(ds, 8, false))]));
    cache.close();
  });

  it('refuses mirrored reads from a cache built without flips', async () => {
    const cache = await TokenCache.build(tempDir('tokens-noflip'), dataset(3), encoder({ images: 0 }), { ...opts, flips: false });
    expect(cache.read([1], [0]).length).toBe(6);
    expect(() => cache.read([1], [1])).toThrow(DataError);
    cache.close();
  });
});
