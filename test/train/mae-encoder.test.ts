/**
 * loadEncoder on an exported MAE encoder: the run folder and its encoder/ subfolder both load, the
 * latent equals the pretraining model's encoder latent, `randomInit` builds the same architecture
 * with seeded random weights (for the linear probe's baseline), and bad folders are clear errors.
 */
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { noGrad } from '../../src/autograd/tape.js';
import { MaskedAutoencoder } from '../../src/models/mae.js';
import { manualSeed, tensor, toArray } from '../../src/tensor/creation.js';
import { scopeAsync } from '../../src/tensor/scope.js';
import { presetConfig } from '../../src/train/config.js';
import { detectEncoderFolder, encodeBatch, loadEncoder } from '../../src/train/context.js';
import { saveMaeEncoder } from '../../src/train/mae-files.js';
import { maeConfig } from '../../src/train/mae-stage.js';
import { normalizeImages } from '../../src/train/rae.js';
import { expectAllclose, TOL } from '../helpers/compare.js';
import { uniformF32 } from '../helpers/random.js';
import { useGpu } from '../helpers/setup.js';

useGpu();

const tmp = () => fs.mkdtempSync(path.join(tmpdir(), 'rae-mae-enc-'));

describe('loadEncoder with an MAE', () => {
  it('loads DIR and DIR/encoder, matches the model it was saved from, and randomInit is seeded and different', () =>
    scopeAsync(async () => {
      const c = presetConfig('tiny');
      const runDir = tmp();
      manualSeed(3);
      const model = MaskedAutoencoder.fromConfig(maeConfig(c));
      await saveMaeEncoder(runDir, c, model, { steps: 6, seconds: 1 });
      const images = tensor(
        uniformF32(2 * 3 * 16 * 16, 5, 0.5).map((v) => v + 0.5),
        [2, 3, 16, 16],
      );
      const want = await toArray(noGrad(() => model.encoder.latent(normalizeImages(images))));

      for (const dir of [runDir, path.join(runDir, 'encoder')]) {
        const enc = await loadEncoder(tmp(), { ...c, encoder: { ...c.encoder, path: dir } });
        expect(enc).toMatchObject({ kind: 'mae', inputSize: 16, grid: 4, dim: 16, tokens: 17, heads: 2 });
        expectAllclose(await toArray(encodeBatch(enc, images)), want, TOL.exact);
        enc.encoder.dispose();
      }
      const withPath = { ...c, encoder: { ...c.encoder, path: runDir } };
      const r1 = await loadEncoder(tmp(), withPath, { randomInit: true });
      const r2 = await loadEncoder(tmp(), withPath, { randomInit: true });
      expect(r1.note).toMatch(/randomly initialised/);
      expect(r1.encoder.namedParameters().map(([k, t]) => [k, t.shape])).toEqual(
        model.encoder.namedParameters().map(([k, t]) => [k, t.shape]),
      );
      const z1 = await toArray(encodeBatch(r1, images));
      expectAllclose(await toArray(encodeBatch(r2, images)), z1, TOL.exact);
      expect(Math.max(...z1.map((v, i) => Math.abs(v - want[i])))).toBeGreaterThan(0.1);
      for (const e of [r1, r2]) e.encoder.dispose();
      model.dispose();
    }));

  it('randomInit on the default random DINOv2 touches nothing in the run folder', async () => {
    const runDir = tmp();
    const enc = await loadEncoder(runDir, presetConfig('tiny'), { randomInit: true });
    expect(enc.kind).toBe('random-dinov2');
    expect(fs.readdirSync(runDir)).toEqual([]);
    enc.encoder.dispose();
  });

  it('a folder that is no encoder says what was expected', () => {
    const dir = tmp();
    expect(() => detectEncoderFolder(path.join(dir, 'missing'))).toThrow(/no such folder \(expected .*dinov2.*MAE run folder/);
    expect(() => detectEncoderFolder(dir)).toThrow(/neither config\.json nor encoder\/config\.json found/);
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ preset: 'cpu', mae: {} }));
    expect(() => detectEncoderFolder(dir)).toThrow(/pretraining has not finished.*rae pretrain-encoder --run .* --resume/);
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ model_type: 'bert' }));
    expect(() => detectEncoderFolder(dir)).toThrow(/model_type "bert"/);
    fs.writeFileSync(path.join(dir, 'config.json'), '{ nope');
    expect(() => detectEncoderFolder(dir)).toThrow(/not valid JSON/);
  });
});
