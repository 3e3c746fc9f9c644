/**
 * DiT^DH with its non-default block settings against the official DiTwDDTHead on random weights
 * (fixture from tools/golden/make_dit_fixtures.py): tanh-GELU MLP instead of SwiGLU, LayerNorm
 * (no affine) instead of RMSNorm, no RoPE. Velocity within 1e-4 relative-by-max; gradients of
 * sum(v · loss_weights) for every parameter and the input within 1e-3.
 */
import { describe, expect, it } from 'vitest';
import * as ops from '../../src/autograd/ops/index.js';
import { backward } from '../../src/autograd/tape.js';
import { tensor, toArray } from '../../src/tensor/creation.js';
import { DiTDH, type DiTConfig } from '../../src/models/dit.js';
import { scopeAsync } from '../../src/tensor/scope.js';
import { gradientErrors, loadGolden, relByMax, REPO_GOLDEN_DIR } from '../helpers/golden.js';
import { useGpu } from '../helpers/setup.js';

useGpu();

const g = loadGolden('ditdh_gelu_ln_norope', { dir: REPO_GOLDEN_DIR });
const config = g.meta.config as unknown as DiTConfig;
const input = (k: string) => {
  const t = g.inputs.get(k)!;
  return tensor(t.data, t.shape, { dtype: t.dtype });
};

describe('DiTDH golden: SwiGLU off, LayerNorm, no RoPE', () => {
  it('the configuration is the one named, and the model builds the same position table', () =>
    scopeAsync(async () => {
      expect([config.use_swiglu, config.use_rmsnorm, config.use_rope]).toEqual([false, false, false]);
      const m = DiTDH.fromConfig(config);
      const own = m.stateDict();
      // No RoPE tables and no norm weights on either side.
      for (const k of [...own.keys(), ...g.params.keys()]) expect(k).not.toMatch(/feat_rope|norm/);
      const got = await toArray(own.get('pos_embed')!);
      const ref = g.params.get('pos_embed')!.data;
      expect(Math.max(...Array.from(got, (v, i) => Math.abs(v - ref[i])))).toBeLessThan(1e-6);
      m.dispose();
    }));

  it('velocity and gradients match the reference', () =>
    scopeAsync(async () => {
      const m = DiTDH.fromConfig(config);
      m.loadStateDict(g.params);
      m.eval();
      const x = input('x');
      x.requiresGrad = true;
      const v = m.forward(x, input('t'), input('y'));
      expect(relByMax(await toArray(v), g.outputs.get('v')!.data)).toBeLessThan(1e-4);
      backward(ops.sum(ops.mul(v, input('loss_weights'))));
      const sd = m.stateDict();
      sd.set('input.x', x);
      const errors = await gradientErrors(g, sd);
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
