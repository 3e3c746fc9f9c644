/** imagesToTensor: uint8 [n, 3, S, S] → f32 in [0, 1] on the adapter, byte/255 exactly as in f32. */
import { describe, expect, it } from 'vitest';
import { toArray } from '../../src/tensor/creation.js';
import { imagesToTensor } from '../../src/train/data/index.js';
import { useGpu } from '../helpers/setup.js';

useGpu();

describe('imagesToTensor', () => {
  it('keeps the shape and maps each byte b to fround(b / 255)', async () => {
    const [n, size] = [2, 5];
    const bytes = Uint8Array.from({ length: n * 3 * size * size }, (_, i) => (i * 53) % 256);
    bytes[0] = 0;
    bytes[1] = 255;
    const t = imagesToTensor(bytes, n, size);
    expect(t.shape).toEqual([n, 3, size, size]);
    const got = await toArray(t);
    t.dispose();
    bytes.forEach((b, i) => expect(got[i]).toBe(Math.fround(b / 255)));
  });

  it('refuses a byte array shorter than the shape', () => {
    expect(() => imagesToTensor(new Uint8Array(10), 1, 2)).toThrow(RangeError);
  });
});
