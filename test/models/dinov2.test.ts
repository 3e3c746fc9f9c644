/**
 * DINOv2 (with and without registers) against HF transformers' outputs on random weights.
 * Tolerance: 1e-4 relative-by-max for forward outputs (the issue's bound).
 */
import { describe, expect, it } from 'vitest';
import { tensor, toArray } from '../../src/tensor/creation.js';
import { Dinov2, Dinov2WithRegisters, type Dinov2Config } from '../../src/models/dinov2.js';
import { scopeAsync } from '../../src/tensor/scope.js';
import { expectAllclose, TOL } from '../helpers/compare.js';
import { loadGolden } from '../helpers/golden.js';
import { useGpu } from '../helpers/setup.js';

useGpu();

describe('Dinov2WithRegisters golden', () => {
  const g = loadGolden('dinov2_reg_small');
  it('last_hidden_state and rae_latent match transformers', () =>
    scopeAsync(async () => {
      const model = Dinov2WithRegisters.fromConfig(g.meta.config as unknown as Dinov2Config);
      model.loadStateDict(g.params);
      model.eval();
      const px = g.inputs.get('pixel_values')!;
      const x = tensor(px.data, px.shape);
      const out = await toArray(model.forward(x));
      expectAllclose(out, g.outputs.get('last_hidden_state')!.data, TOL.modelForward);
      const lat = await toArray(model.latent(x));
      expectAllclose(lat, g.outputs.get('rae_latent')!.data, TOL.modelForward);
      model.dispose();
    }));

  it('encodeImage: 256 → bicubic 224 → ImageNet normalisation → latent', () =>
    scopeAsync(async () => {
      const model = Dinov2WithRegisters.fromConfig(g.meta.config as unknown as Dinov2Config);
      model.loadStateDict(g.params);
      const im = g.inputs.get('image256')!;
      const px = model.encodeImage(tensor(im.data, im.shape), 224);
      const lat = await toArray(model.latent(px));
      expectAllclose(lat, g.outputs.get('rae_latent_from_image256')!.data, TOL.modelForward);
      model.dispose();
    }));
});

describe('Dinov2 (no registers) golden', () => {
  const g = loadGolden('dinov2_noreg_small');
  it('last_hidden_state and rae_latent match transformers', () =>
    scopeAsync(async () => {
      const model = Dinov2.fromConfig(g.meta.config as unknown as Dinov2Config);
      model.loadStateDict(g.params);
      const px = g.inputs.get('pixel_values')!;
      const x = tensor(px.data, px.shape);
      expectAllclose(await toArray(model.forward(x)), g.outputs.get('last_hidden_state')!.data, TOL.modelForward);
      expectAllclose(await toArray(model.latent(x)), g.outputs.get('rae_latent')!.data, TOL.modelForward);
      model.dispose();
    }));

  it('strict loading lists missing, unexpected and mismatched keys together', () => {
    const model = Dinov2.fromConfig(g.meta.config as unknown as Dinov2Config);
    const bad = new Map(g.params);
    bad.delete('layernorm.bias');
    bad.set('extra.weight', { shape: [1], data: new Float32Array(1) });
    bad.set('embeddings.cls_token', { shape: [1, 2, 48], data: new Float32Array(96) });
    expect(() => model.loadStateDict(bad)).toThrow(
      /missing keys \(1\): layernorm.bias[\s\S]*unexpected keys \(1\): extra.weight[\s\S]*embeddings.cls_token: checkpoint \[1, 2, 48\] vs model \[1, 1, 48\]/,
    );
    model.dispose();
  });
});
