/**
 * Every parameter of every model receives a finite, non-zero gradient (weights re-randomised
 * first: adaLN-Zero initialisation would otherwise zero most gradients at step 0), and the plain
 * DiT (LightningDiT, no golden fixture) runs with the right shapes.
 */
import { describe, expect, it } from 'vitest';
import * as ops from '../../src/autograd/ops/index.js';
import { backward } from '../../src/autograd/tape.js';
import { Dinov2WithRegisters } from '../../src/models/dinov2.js';
import { DiT, DiTDH } from '../../src/models/dit.js';
import { RAEDecoder } from '../../src/models/rae-decoder.js';
import type { Module } from '../../src/nn/module.js';
import { full, randint, randn, toArray } from '../../src/tensor/creation.js';
import { scopeAsync } from '../../src/tensor/scope.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { useGpu } from '../helpers/setup.js';
import { randomData } from '../helpers/random.js';

useGpu();

function randomise(m: Module, seed: number): void {
  let s = seed;
  const state = new Map(
    [...m.namedParameters()].map(([k, t]) => [k, { shape: [...t.shape], data: Float32Array.from(randomData(t.size, s++, -0.2, 0.2)) }]),
  );
  m.loadStateDict(state, { strict: false });
}

async function expectAllGrads(m: Module, except: string[] = []): Promise<number> {
  let n = 0;
  for (const [k, p] of m.namedParameters()) {
    if (!p.requiresGrad || except.includes(k)) continue;
    expect(p.grad, `${k} has no gradient`).not.toBeNull();
    const g = await toArray(p.grad!);
    const maxAbs = Math.max(...Array.from(g, Math.abs));
    expect(Number.isFinite(maxAbs) && maxAbs > 0, `${k}: max |grad| = ${maxAbs}`).toBe(true);
    n++;
  }
  return n;
}

const sq = (t: Tensor) => ops.mean(ops.mul(t, t));

describe('gradients reach every parameter', () => {
  it('Dinov2WithRegisters (position table resized by resampling matrices)', () =>
    scopeAsync(async () => {
      const m = Dinov2WithRegisters.fromConfig({
        hidden_size: 32,
        num_hidden_layers: 2,
        num_attention_heads: 2,
        patch_size: 4,
        image_size: 24,
        num_register_tokens: 2,
      });
      randomise(m, 1);
      backward(sq(m.latent(randn([2, 3, 16, 16], { seed: 2 }))));
      // mask_token is only used for masked-image modelling; the final layernorm is bypassed by latent().
      const n = await expectAllGrads(m, ['embeddings.mask_token', 'layernorm.weight', 'layernorm.bias']);
      expect(n).toBeGreaterThan(30);
      m.dispose();
    }));

  it('RAEDecoder', () =>
    scopeAsync(async () => {
      const m = RAEDecoder.fromConfig({
        hidden_size: 16,
        decoder_hidden_size: 24,
        decoder_num_hidden_layers: 2,
        decoder_num_attention_heads: 2,
        decoder_intermediate_size: 48,
        patch_size: 2,
        num_patches: 9,
      });
      randomise(m, 3);
      backward(sq(m.unpatchify(m.forward(randn([2, 9, 16], { seed: 4 })))));
      expect(await expectAllGrads(m)).toBeGreaterThan(20);
      m.dispose();
    }));

  for (const [name, make] of [
    [
      'DiT',
      () => DiT.fromConfig({ input_size: 4, patch_size: 2, in_channels: 8, hidden_size: 32, depth: 2, num_heads: 2, num_classes: 5 }),
    ],
    [
      'DiTDH',
      () =>
        DiTDH.fromConfig({
          input_size: 4,
          patch_size: 1,
          in_channels: 8,
          hidden_size: [32, 48],
          depth: [1, 1],
          num_heads: [2, 2],
          num_classes: 5,
        }),
    ],
  ] as const) {
    it(`${name}: velocity shape and gradients (input too)`, () =>
      scopeAsync(async () => {
        const m = make();
        randomise(m, 5);
        m.train();
        const x = randn([3, 8, 4, 4], { seed: 6 });
        x.requiresGrad = true;
        const v = m.forward(x, full([3], 0.3), randint(0, 5, [3], { seed: 7 }));
        expect(v.shape).toEqual([3, 8, 4, 4]);
        backward(sq(v));
        // t_embedder.W is the frozen random Fourier basis (requiresGrad false).
        expect(await expectAllGrads(m)).toBeGreaterThan(20);
        expect(x.grad).not.toBeNull();
        m.dispose();
      }));
  }
});
