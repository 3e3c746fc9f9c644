/**
 * nsfwjs's InceptionV3 as tfjs itself loads it (tfjs-core + the pure-JavaScript CPU backend +
 * tfjs-layers 4.22, dev dependencies): the reference the engine's loader and network are
 * checked against. The bundles are loaded the way nsfwjs's own loader does (require() of its
 * model.min.js / shard bundles, base64 decoded, shards concatenated), independently of
 * src/eval's text parser.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { locateNsfwjs } from '../../src/eval/inception-weights.js';

export { tf, tfl };

interface ModelJson {
  modelTopology: object;
  weightsManifest: Array<{ paths: string[]; weights: tf.io.WeightsManifestEntry[] }>;
}

export async function loadWithTfjs(): Promise<tfl.LayersModel> {
  await tf.setBackend('cpu');
  const dir = path.join(locateNsfwjs().dir, 'dist', 'models', 'inception_v3');
  const require = createRequire(import.meta.url);
  const modelJson = require(path.join(dir, 'model.min.js')) as ModelJson;
  const weightSpecs: tf.io.WeightsManifestEntry[] = [];
  const parts: Uint8Array[] = [];
  for (const group of modelJson.weightsManifest) {
    for (const p of group.paths) parts.push(new Uint8Array(Buffer.from(require(path.join(dir, `${p}.min.js`)) as string, 'base64')));
    weightSpecs.push(...group.weights);
  }
  const weightData = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    weightData.set(p, at);
    at += p.length;
  }
  return tfl.loadLayersModel(tf.io.fromMemory({ modelTopology: modelJson.modelTopology, weightSpecs, weightData: weightData.buffer }));
}
