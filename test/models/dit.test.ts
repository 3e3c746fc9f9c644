/**
 * Plain DiT (the reference's LightningDiT) against the official code on random weights
 * (fixtures from tools/golden/make_dit_fixtures.py): the position and RoPE tables the model
 * builds itself, the velocity within 1e-4 relative-by-max, and the gradients of
 * sum(v · loss_weights) for every parameter and the input within 1e-3.
 *   dit_small       SwiGLU (mlp_ratio 2), RMSNorm, RoPE, patch 1
 *   dit_gelu_ln_p2  tanh-GELU MLP, LayerNorm without affine, no RoPE, patch 2
 */
import { describe, expect, it } from 'vitest';
import * as ops from '../../src/autograd/ops/index.js';
import { backward } from '../../src/autograd/tape.js';
import { tensor, toArray } from '../../src/tensor/creation.js';
import { DiT, type DiTConfig } from '../../src/models/dit.js';
import { scopeAsync } from '../../src/tensor/scope.js';
import { gradientErrors, loadGolden, relByMax, REPO_GOLDEN_DIR } from '../helpers/golden.js';
import { useGpu } from '../helpers/setup.js';

useGpu();

for (const name of ['dit_small', 'dit_gelu_ln_p2']) {
  const g = loadGolden(name, { dir: REPO_GOLDEN_DIR });
  const config = g.meta.config as unknown as DiTConfig;
  const input = (k: string) => {
    const t = g.inputs.get(k)!;
    return tensor(t.data, t.shape, { dtype: t.dtype });
  };

  describe(`DiT golden: ${name}`, () => {
    it('builds the same fixed tables as the reference (before loading)', () =>
      scopeAsync(async () => {
        const m = DiT.fromConfig(config);
        const own = m.stateDict();
        const tables = [...g.params.keys()].filter((k) => k === 'pos_embed' || k.startsWith('feat_rope.'));
        expect(tables).toContain('pos_embed');
        expect(tables.length).toBe(config.use_rope ? 3 : 1);
        for (const k of tables) {
          const got = await toArray(own.get(k)!);
          const ref = g.params.get(k)!.data;
          expect(got.length, k).toBe(ref.length);
          // Both sides round the same float64 table to float32.
          expect(Math.max(...Array.from(got, (v, i) => Math.abs(v - ref[i]))), k).toBeLessThan(1e-6);
        }
        m.dispose();
      }));

    it('velocity and gradients match the reference', () =>
      scopeAsync(async () => {
        const m = DiT.fromConfig(config);
        m.loadStateDict(g.params);
        m.eval();
        const x = input('x');
        x.requiresGrad = true;
        const v = m.forward(x, input('t'), input('y'));
        expect(v.shape).toEqual(g.outputs.get('v')!.shape);
        expect(relByMax(await toArray(v), g.outputs.get('v')!.data)).toBeLessThan(1e-4);
        backward(ops.sum(ops.mul(v, input('loss_weights'))));
        const sd = m.stateDict();
        sd.set('input.x', x);
        const errors = await gradientErrors(g, sd);
        // Every trainable tensor of the model has a reference gradient (none skipped).
        const trainable = m
          .namedParameters()
          .filter(([, t]) => t.requiresGrad)
          .map(([k]) => k);
        for (const k of trainable) expect(errors.has(k), `no reference gradient for ${k}`).toBe(true);
        expect(errors.has('input.x')).toBe(true);
        for (const [k, err] of errors) expect(err, `${k}: rel err ${err}`).toBeLessThan(1e-3);
        m.dispose();
      }));
  });
}
