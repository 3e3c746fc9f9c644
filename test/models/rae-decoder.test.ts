/**
 * RAE decoder against the official GeneralDecoder on random weights: logits and image within
 * 1e-4 relative-by-max, parameter gradients of sum(logits · w) within 1e-3.
 */
import { describe, expect, it } from 'vitest';
import * as ops from '../../src/autograd/ops/index.js';
import { backward } from '../../src/autograd/tape.js';
import { tensor, toArray } from '../../src/tensor/creation.js';
import { RAEDecoder } from '../../src/models/rae-decoder.js';
import { scopeAsync } from '../../src/tensor/scope.js';
import { expectAllclose, TOL } from '../helpers/compare.js';
import { expectGradientsMatch, loadGolden } from '../helpers/golden.js';
import { useGpu } from '../helpers/setup.js';

useGpu();

describe('RAEDecoder golden', () => {
  const g = loadGolden('rae_decoder_small');
  const c = g.meta.config as Record<string, number>;
  const config = {
    hidden_size: c.enc_dim,
    decoder_hidden_size: c.dec_dim,
    decoder_num_hidden_layers: c.depth,
    decoder_num_attention_heads: c.heads,
    decoder_intermediate_size: c.mlp,
    patch_size: c.patch,
    num_channels: 3,
    layer_norm_eps: c.ln_eps,
    num_patches: c.grid * c.grid,
  };

  it('logits, image and every parameter gradient match the reference', () =>
    scopeAsync(async () => {
      const model = RAEDecoder.fromConfig(config);
      model.loadStateDict(g.params);
      const tok = g.inputs.get('tokens')!;
      const w = g.inputs.get('loss_weights')!;
      const logits = model.forward(tensor(tok.data, tok.shape));
      expectAllclose(await toArray(logits), g.outputs.get('logits')!.data, TOL.modelForward);
      const img = model.unpatchify(logits);
      expect(img.shape).toEqual(g.outputs.get('image')!.shape);
      expectAllclose(await toArray(img), g.outputs.get('image')!.data, TOL.modelForward);
      backward(ops.sum(ops.mul(logits, tensor(w.data, w.shape))));
      const sd = model.stateDict();
      // Every trainable parameter has a fixture gradient, and every one is compared.
      await expectGradientsMatch(
        g,
        sd,
        model
          .namedParameters()
          .filter(([, t]) => t.requiresGrad)
          .map(([k]) => k),
      );
      model.dispose();
    }));

  it('state dict round trip through safetensors gives the same outputs', () =>
    scopeAsync(async () => {
      const { saveSafetensors, loadSafetensors } = await import('../../src/io/safetensors.js');
      const { mkdtempSync } = await import('node:fs');
      const { tmpdir } = await import('node:os');
      const path = await import('node:path');
      const a = RAEDecoder.fromConfig(config);
      a.loadStateDict(g.params);
      const file = path.join(mkdtempSync(path.join(tmpdir(), 'rae-')), 'decoder.safetensors');
      const sd: Record<string, { shape: number[]; data: Float32Array }> = {};
      for (const [k, t] of a.stateDict()) sd[k] = { shape: [...t.shape], data: (await toArray(t)) as Float32Array };
      saveSafetensors(file, sd, { format: 'pt' });
      const b = RAEDecoder.fromConfig(config);
      b.loadStateDict(loadSafetensors(file));
      const tok = g.inputs.get('tokens')!;
      const x = tensor(tok.data, tok.shape);
      const ya = await toArray(a.forward(x));
      const yb = await toArray(b.forward(x));
      expect(Array.from(yb)).toEqual(Array.from(ya));
      a.dispose();
      b.dispose();
    }));
});
