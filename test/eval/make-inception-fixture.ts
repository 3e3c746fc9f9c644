/**
 * Writes test/fixtures/inception/nsfwjs_inception_features.safetensors: two small synthetic
 * RGB images and the 2048-d features tfjs's CPU backend computes for them with nsfwjs's
 * InceptionV3 — the golden vectors the engine's Inception network is checked against (within
 * 1e-4 relative). Run once, by hand:  npx vite-node test/eval/make-inception-fixture.ts
 *
 * Preprocessing (the engine must do exactly this):
 *   1. uint8 HWC RGB → float32, divided by 255 (nsfwjs's input range is [0, 1], not [-1, 1]);
 *   2. bilinear resize to 299×299 with half-pixel centres and no corner alignment
 *      (tf.image.resizeBilinear(x, [299, 299], alignCorners = false, halfPixelCenters = true);
 *      PyTorch's F.interpolate(mode='bilinear', align_corners=False, antialias=False), which is
 *      what pytorch-fid does; nsfwjs's own classify() uses alignCorners = true instead);
 *   3. NHWC batch through the model up to `mixed10` (8×8×2048), then the mean over H and W.
 * `mixed0_mean` (the same mean over `mixed0`, 35×35×256) is stored too, to bisect a mismatch.
 */
import path from 'node:path';
import { saveSafetensors } from '../../src/io/index.js';
import { makeRng } from '../../src/cpu/random.js';
import { loadNsfwjsInception } from '../../src/eval/inception-weights.js';
import { loadWithTfjs, tf, tfl } from './tfjs-reference.js';

const OUT = path.resolve(__dirname, '../fixtures/inception/nsfwjs_inception_features.safetensors');

/** A smooth colour gradient plus noise, so the resize and the network see structure at several scales. */
function syntheticImage(h: number, w: number, seed: number): Uint8Array {
  const rng = makeRng(seed);
  const img = new Uint8Array(h * w * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < 3; c++) {
        const wave = 0.5 + 0.5 * Math.sin(((x * (c + 1)) / w) * 3 + ((y * (3 - c)) / h) * 2 + seed);
        img[(y * w + x) * 3 + c] = Math.min(255, Math.floor(200 * wave + 56 * rng()));
      }
    }
  }
  return img;
}

export function preprocess(img: Uint8Array, h: number, w: number): tf.Tensor4D {
  return tf.tidy(() => {
    // Functional ops: tfjs-core alone does not register the chained tensor methods.
    const x = tf.div(tf.cast(tf.tensor3d(img, [h, w, 3], 'int32'), 'float32'), tf.scalar(255)) as tf.Tensor3D;
    return tf.expandDims(tf.image.resizeBilinear(x, [299, 299], false, true), 0) as tf.Tensor4D;
  });
}

async function main(): Promise<void> {
  const sizes: Array<[number, number]> = [
    [23, 17],
    [31, 40],
  ];
  const images = sizes.map(([h, w], i) => syntheticImage(h, w, 100 + i));
  const model = await loadWithTfjs();
  const features = tfl.model({
    inputs: model.inputs,
    outputs: [model.getLayer('mixed10').output as tfl.SymbolicTensor, model.getLayer('mixed0').output as tfl.SymbolicTensor],
  });
  const batch = tf.concat(
    images.map((img, i) => preprocess(img, sizes[i][0], sizes[i][1])),
    0,
  );
  const started = performance.now();
  const [mixed10, mixed0] = features.predict(batch) as tf.Tensor4D[];
  const pooled10 = tf.mean(mixed10, [1, 2]);
  const pooled0 = tf.mean(mixed0, [1, 2]);
  console.log(
    `tfjs CPU forward of 2 images: ${((performance.now() - started) / 1000).toFixed(1)} s; mixed10 ${mixed10.shape}, mixed0 ${mixed0.shape}`,
  );
  const inception = loadNsfwjsInception();
  saveSafetensors(
    OUT,
    {
      image0: { dtype: 'U8', shape: [...sizes[0], 3], data: images[0] },
      image1: { dtype: 'U8', shape: [...sizes[1], 3], data: images[1] },
      features: { dtype: 'F32', shape: [2, 2048], data: pooled10.dataSync() as Float32Array },
      mixed0_mean: { dtype: 'F32', shape: [2, 256], data: pooled0.dataSync() as Float32Array },
    },
    {
      network: `nsfwjs ${inception.version} InceptionV3 (weights sha256 ${inception.weightsSha256})`,
      reference: `tfjs-core/tfjs-backend-cpu/tfjs-layers ${tf.version_core}, CPU backend, float32`,
      preprocessing: 'uint8 RGB HWC / 255 -> tf.image.resizeBilinear([299,299], alignCorners=false, halfPixelCenters=true) -> NHWC',
      features: 'mean over H,W of mixed10 (8x8x2048) ; mixed0_mean: mean over H,W of mixed0 (35x35x256)',
    },
  );
  console.log(`wrote ${OUT}`);
}

await main();
