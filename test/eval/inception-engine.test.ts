/**
 * The engine's InceptionV3 (src/eval/inception.ts) against tfjs's pure-JavaScript CPU backend:
 * the golden features of test/fixtures/inception (two small u8 images, /255, bilinear 299×299
 * with half-pixel centres). Tolerance family modelForward (1e-4 · max|want|, a whole network in
 * f32 against another f32 implementation); mixed0's means are checked first so a mismatch is
 * localised to the stem + first block or to what follows.
 */
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EngineInception } from '../../src/eval/inception.js';
import { loadNsfwjsInception } from '../../src/eval/inception-weights.js';
import { openSafetensors } from '../../src/io/index.js';
import { toArray } from '../../src/index.js';
import { allclose, expectAllclose, maxAbs, TOL } from '../helpers/compare.js';
import { useGpu } from '../helpers/setup.js';

useGpu();

const FIXTURE = path.resolve(__dirname, '../fixtures/inception/nsfwjs_inception_features.safetensors');

describe('InceptionV3 in the engine vs tfjs CPU', () => {
  let net: EngineInception | null = null;
  afterAll(() => net?.dispose());

  it('mixed0 means and mixed10 features of the golden images', async () => {
    const file = openSafetensors(FIXTURE);
    const read = (k: string) => file.read(k).data as Float32Array | Uint8Array;
    const shape = (k: string) => file.info(k).shape;
    const images = ['image0', 'image1'].map((k) => ({ data: read(k) as Uint8Array, height: shape(k)[0], width: shape(k)[1] }));
    const wantFeatures = read('features') as Float32Array;
    const wantMixed0 = read('mixed0_mean') as Float32Array;
    file.close();
    net = new EngineInception(loadNsfwjsInception());
    const t0 = performance.now();
    const out = net.images(images);
    const [features, mixed0] = [await toArray(out.features), await toArray(out.mixed0Mean)];
    const seconds = (performance.now() - t0) / 1000;
    out.features.dispose();
    out.mixed0Mean.dispose();
    const r0 = allclose(mixed0, wantMixed0, TOL.modelForward, { label: 'mixed0 mean', shape: [2, 256] });
    const r10 = allclose(features, wantFeatures, TOL.modelForward, { label: 'mixed10 features', shape: [2, 2048] });
    const rel = (r: { maxAbsErr: number }, want: Float32Array) => (r.maxAbsErr / maxAbs(want)).toExponential(2);
    console.log(
      `inception engine vs tfjs: 2 images in ${seconds.toFixed(1)} s (incl. first-use pipeline compiles); max error / max|want|: mixed0 ${rel(r0, wantMixed0)}, mixed10 ${rel(r10, wantFeatures)}`,
    );
    expectAllclose(mixed0, wantMixed0, TOL.modelForward, { label: 'mixed0 mean', shape: [2, 256] });
    expectAllclose(features, wantFeatures, TOL.modelForward, { label: 'mixed10 features', shape: [2, 2048] });
    expect(features.length).toBe(4096);
    // One image per batch: the same kernels and summation order per image, so the same bits.
    expectAllclose(await net.features(images, 1), features, TOL.exact, { label: 'features batch 1', shape: [2, 2048] });
    expect(() => net!.images([{ data: new Uint8Array(10), height: 2, width: 2 }])).toThrow(/image 0 has 10 bytes, expected 2×2×3/);
  }, 300_000); // the first forward compiles every conv shape: over 60 s at load average 13–30 on 2 cores
});
