/**
 * nsfwjs's InceptionV3 read as text by src/eval/inception-weights.ts against the same files
 * loaded by tfjs itself (tfjs-layers' loadLayersModel on the CPU backend): every dequantised
 * weight bitwise equal, the same names and shapes, and a layer graph with the structure the
 * network builder relies on (src/eval/README.md).
 */
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, readFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { InceptionWeightsError, loadNsfwjsInception, locateNsfwjs, type NsfwjsInception } from '../../src/eval/inception-weights.js';
import { openSafetensors } from '../../src/io/index.js';
import { loadWithTfjs } from './tfjs-reference.js';

let cached: NsfwjsInception | undefined;
const ours = (): NsfwjsInception => (cached ??= loadNsfwjsInception());

describe('nsfwjs InceptionV3 weights', () => {
  it('equal, bit for bit, what tfjs loads from the same bundles', async () => {
    const model = await loadWithTfjs();
    const mine = ours();
    expect(mine.version).toBe('4.4.0');
    expect(model.weights.length).toBe(mine.weights.size);
    let compared = 0;
    for (const w of model.weights) {
      const got = mine.weights.get(w.originalName);
      expect(got, `weight ${w.originalName}`).toBeDefined();
      expect(got?.shape).toEqual(w.shape);
      const want = w.read().dataSync() as Float32Array;
      const a = new Uint32Array(got!.data.buffer, got!.data.byteOffset, got!.data.length);
      const b = new Uint32Array(want.buffer, want.byteOffset, want.length);
      let firstDiff = -1;
      for (let i = 0; i < a.length && firstDiff < 0; i++) if (a[i] !== b[i]) firstDiff = i;
      expect(firstDiff, `${w.originalName}: first differing element`).toBe(-1);
      compared += a.length;
    }
    expect(compared).toBe(22_360_869);
    model.dispose();
  }, 300_000);

  it('has the layer graph the network builder expects', () => {
    const { layers, inputLayers } = ours();
    expect(inputLayers).toEqual(['input_1']);
    const count = (cls: string): number => layers.filter((l) => l.className === cls).length;
    expect([count('Conv2D'), count('BatchNormalization'), count('Concatenate')]).toEqual([94, 94, 15]);
    for (const l of layers.filter((x) => x.className === 'Conv2D')) {
      expect(l.config.use_bias).toBe(false);
      // 'same' only with stride 1, where Keras pads (k − 1)/2 on both sides of an odd kernel.
      if (l.config.padding === 'same') expect(l.config.strides).toEqual([1, 1]);
    }
    for (const l of layers.filter((x) => x.className === 'BatchNormalization')) {
      expect([l.config.epsilon, l.config.center, l.config.scale, l.config.axis]).toEqual([0.001, true, false, 3]);
    }
    // Every convolution feeds exactly one batch norm, which feeds exactly one ReLU.
    const consumers = (name: string) => layers.filter((l) => l.inbound.includes(name));
    for (const conv of layers.filter((x) => x.className === 'Conv2D')) {
      const [bn, ...rest] = consumers(conv.name);
      expect([bn?.className, rest.length]).toEqual(['BatchNormalization', 0]);
      const relu = consumers(bn.name);
      expect(relu.map((l) => [l.className, l.config.activation])).toEqual([['Activation', 'relu']]);
    }
    const mixed10 = layers.find((l) => l.name === 'mixed10');
    expect(mixed10?.inbound).toEqual(['activation_86', 'mixed9_1', 'concatenate_2', 'activation_94']);
  });

  it('has golden features made from these very weights', () => {
    // test/fixtures/inception: tfjs CPU features of two images (make-inception-fixture.ts).
    const file = openSafetensors(path.resolve(__dirname, '../fixtures/inception/nsfwjs_inception_features.safetensors'));
    try {
      expect(file.metadata.network).toContain(ours().weightsSha256);
      expect(file.metadata.preprocessing).toMatch(/halfPixelCenters=true/);
      expect([file.info('image0').shape, file.info('image1').shape, file.info('features').shape]).toEqual([
        [23, 17, 3],
        [31, 40, 3],
        [2, 2048],
      ]);
      const features = file.read('features').data as Float32Array;
      expect(features.every((v) => Number.isFinite(v) && v >= 0)).toBe(true); // means of ReLU outputs
    } finally {
      file.close();
    }
  });

  it('explains a missing package, a missing file or a damaged bundle', () => {
    expect(() => locateNsfwjs('file:///nonexistent/place/x.js')).toThrow(/not installed: run `npm i nsfwjs@4\.4\.0`/);
    const dir = mkdtempSync(path.join(tmpdir(), 'rae-nsfwjs-'));
    try {
      writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'nsfwjs', version: '4.4.0' }));
      expect(() => loadNsfwjsInception(dir)).toThrow(/model\.min\.js is missing .*npm i nsfwjs@4\.4\.0/);
      const models = path.join(dir, 'dist', 'models', 'inception_v3');
      mkdirSync(models, { recursive: true });
      const source = path.join(locateNsfwjs().dir, 'dist', 'models', 'inception_v3');
      cpSync(path.join(source, 'model.min.js'), path.join(models, 'model.min.js'));
      for (let s = 1; s <= 5; s++) cpSync(path.join(source, `group1-shard${s}of6.min.js`), path.join(models, `group1-shard${s}of6.min.js`));
      // A truncated last shard: the manifest no longer fits the bytes.
      const last = readFileSync(path.join(source, 'group1-shard6of6.min.js'), 'utf8');
      const cut = last.replace(/"([A-Za-z0-9+/]{4000})[A-Za-z0-9+/=]{100,}"/, '"$1"');
      writeFileSync(path.join(models, 'group1-shard6of6.min.js'), cut);
      expect(() => loadNsfwjsInception(dir)).toThrow(InceptionWeightsError);
      expect(() => loadNsfwjsInception(dir)).toThrow(/dense_|shards hold/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
