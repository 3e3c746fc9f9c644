/**
 * DiT^DH against the official DiTwDDTHead on random weights: velocity within 1e-4
 * relative-by-max; gradients (parameters and input) within 1e-3; time shift, sampler grid,
 * Euler sample and the CFG velocity.
 */
import { describe, expect, it } from 'vitest';
import * as ops from '../../src/autograd/ops/index.js';
import { backward } from '../../src/autograd/tape.js';
import { full, tensor, toArray } from '../../src/tensor/creation.js';
import { DiTDH, type DiTConfig } from '../../src/models/dit.js';
import { autoGuidanceVelocity, cfgVelocity, eulerSample, samplerGrid, shiftAlpha, shiftTime } from '../../src/diffusion/flow.js';
import { scopeAsync } from '../../src/tensor/scope.js';
import { expectAllclose, TOL } from '../helpers/compare.js';
import { expectGradientsMatch, loadGolden, relByMax } from '../helpers/golden.js';
import { randomData } from '../helpers/random.js';
import { useGpu } from '../helpers/setup.js';
import type { HostTensor } from '../../src/nn/module.js';

useGpu();

const g = loadGolden('ditdh_small');
const config = g.meta.config as unknown as DiTConfig;

function model(): DiTDH {
  const m = DiTDH.fromConfig(config);
  m.loadStateDict(g.params);
  m.eval();
  return m;
}

const input = (k: string) => {
  const t = g.inputs.get(k)!;
  return tensor(t.data, t.shape, { dtype: t.dtype });
};

describe('DiTDH golden', () => {
  it('shift and sampler grid', () => {
    const C = config.in_channels;
    const alpha = shiftAlpha(C * config.input_size * config.input_size);
    expect(alpha).toBeCloseTo(g.meta.shift_alpha as number, 12);
    const tn = g.inputs.get('shift_tn')!.data;
    const want = g.outputs.get('shift_t')!.data;
    tn.forEach((v, i) => expect(Math.abs(shiftTime(v, alpha) - want[i])).toBeLessThan(1e-6));
    const grid = samplerGrid(g.meta.sampler_steps as number, alpha);
    grid.forEach((v, i) => expect(Math.abs(v - g.outputs.get('sampler_grid')!.data[i])).toBeLessThan(1e-6));
  });

  it('velocity and gradients match the reference', () =>
    scopeAsync(async () => {
      const m = model();
      const x = input('x');
      x.requiresGrad = true;
      const v = m.forward(x, input('t'), input('y'));
      expectAllclose(await toArray(v), g.outputs.get('v')!.data, TOL.modelForward);
      backward(ops.sum(ops.mul(v, input('loss_weights'))));
      const sd = m.stateDict();
      sd.set('input.x', x);
      // Every trainable (not frozen) parameter and the input have a fixture gradient, and every one is compared.
      await expectGradientsMatch(g, sd, [
        ...m
          .namedParameters()
          .filter(([, t]) => t.requiresGrad)
          .map(([k]) => k),
        'input.x',
      ]);
      m.dispose();
    }));

  it('Euler sample and the CFG velocity', () =>
    scopeAsync(async () => {
      const m = model();
      const alpha = g.meta.shift_alpha as number;
      const grid = samplerGrid(g.meta.sampler_steps as number, alpha);
      const y = input('sample_y');
      const sample = await eulerSample((x, t) => m.forward(x, t, y), input('noise'), grid);
      expectAllclose(await toArray(sample), g.outputs.get('euler_sample')!.data, TOL.modelForward);
      const guided = cfgVelocity((x, t, yy, mask) => m.forward(x, t, yy, { dropMask: mask }), y, { scale: 2.5 });
      const noise = input('noise');
      const v = guided(noise, full([noise.shape[0]], grid[0]));
      expectAllclose(await toArray(v), g.outputs.get('cfg_v_scale2.5')!.data, TOL.modelForward);
      const v2 = m.forwardWithCfg(noise, full([noise.shape[0]], grid[0]), y, 2.5);
      expectAllclose(await toArray(v2), g.outputs.get('cfg_v_scale2.5')!.data, TOL.modelForward);
      // Outside the guidance interval the velocity is the plain conditional one.
      const off = m.forwardWithCfg(noise, full([noise.shape[0]], grid[0]), y, 2.5, [0, 0.5]);
      const plain = m.forward(noise, full([noise.shape[0]], grid[0]), y);
      expect(relByMax(await toArray(off), await toArray(plain))).toBeLessThan(1e-5);
      m.dispose();
    }));

  it('AutoGuidance combines a main and a weak model: v_weak + s·(v_main − v_weak)', () =>
    scopeAsync(async () => {
      const main = model();
      // The guide is the golden model with every parameter perturbed, so v_weak is neither zero
      // (a freshly initialised DiT^DH has a zero final layer, which would let an implementation
      // that drops the weak terms pass) nor equal to v_main.
      const weak = DiTDH.fromConfig(config);
      const perturbed = new Map(
        [...g.params].map(([k, p], j) => {
          if (/pos_embed|freqs_/.test(k)) return [k, p] as [string, HostTensor]; // fixed tables stay
          const noise = randomData(p.data.length, 101 + j, -0.05, 0.05);
          return [k, { ...p, data: Float32Array.from(p.data, (v, i) => v * 0.8 + noise[i]) }] as [string, HostTensor];
        }),
      );
      weak.loadStateDict(perturbed);
      weak.eval();
      const x = input('noise');
      const t = full([x.shape[0]], 0.7);
      const y = input('sample_y');
      const vm = await toArray(main.forward(x, t, y));
      const vw = await toArray(weak.forward(x, t, y));
      expect(Math.max(...Array.from(vw, Math.abs)), 'v_weak must not be zero').toBeGreaterThan(0.1 * Math.max(...Array.from(vm, Math.abs)));
      expect(relByMax(vw, vm), 'v_weak must differ from v_main').toBeGreaterThan(0.1);
      const v = await toArray(
        autoGuidanceVelocity(
          (a, tt) => main.forward(a, tt, y),
          (a, tt) => weak.forward(a, tt, y),
          { scale: 1.42 },
        )(x, t),
      );
      const want = Array.from(vw, (w, i) => w + 1.42 * (vm[i] - w));
      expect(relByMax(v, want)).toBeLessThan(1e-5);
      // Outside the guidance interval the velocity is v_main alone (scale 1).
      const off = await toArray(
        autoGuidanceVelocity(
          (a, tt) => main.forward(a, tt, y),
          (a, tt) => weak.forward(a, tt, y),
          { scale: 1.42, interval: [0, 0.5] },
        )(x, t),
      );
      expect(relByMax(off, vm)).toBeLessThan(1e-5);
      main.dispose();
      weak.dispose();
    }));
});
