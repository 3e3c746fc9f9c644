/**
 * The masked autoencoder against an independent float64 reference (test/models/mae-reference.ts,
 * which unshuffles as MAE's code does): loss, latent and every parameter gradient (the latter
 * also against central differences of the reference). Masking properties, loss on masked
 * patches only, per-patch normalisation, and that training on a fixed batch lowers the loss.
 */
import { describe, expect, it } from 'vitest';
import * as ops from '../../src/autograd/ops/index.js';
import { backward, noGrad } from '../../src/autograd/tape.js';
import { makeRng } from '../../src/cpu/random.js';
import { type MaeConfig, MaskedAutoencoder, normalizePatches, randomMasking, sinCos2d, visibleCount } from '../../src/models/mae.js';
import { AdamW } from '../../src/nn/optim.js';
import { manualSeed, tensor, toArray } from '../../src/tensor/creation.js';
import { scopeAsync } from '../../src/tensor/scope.js';
import { expectAllclose, TOL } from '../helpers/compare.js';
import { randn } from '../helpers/random.js';
import { useGpu } from '../helpers/setup.js';
import { type Params, refLatent, refPatches, refPosTable, refSampleLoss } from './mae-reference.js';

useGpu();

const CFG: MaeConfig = {
  model_type: 'mae-vit',
  image_size: 8,
  patch_size: 2,
  num_channels: 3,
  hidden_size: 8,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  mlp_ratio: 2,
  decoder_hidden_size: 8,
  decoder_num_hidden_layers: 1,
  decoder_num_attention_heads: 2,
  mask_ratio: 0.75,
  layer_norm_eps: 1e-6,
};
const B = 2;
const N = 16;

/** A model with every parameter (LN weights and biases included) random, and its float64 copy. */
async function randomModel(seed: number): Promise<{ model: MaskedAutoencoder; params: Params }> {
  manualSeed(seed);
  const model = MaskedAutoencoder.fromConfig(CFG);
  const params: Params = new Map();
  const state = new Map<string, { shape: number[]; data: Float32Array }>();
  let s = seed;
  for (const [k, t] of model.namedParameters()) {
    const isNormWeight = /norm.*\.weight$/.test(k);
    const data = randn(t.size, ++s, isNormWeight ? 0.2 : 0.3, isNormWeight ? 1 : 0);
    state.set(k, { shape: [...t.shape], data });
    params.set(k, Float64Array.from(data));
  }
  model.loadStateDict(state);
  return { model, params };
}

function refLoss(params: Params, pixels: Float64Array, order: Int32Array, visible: number): number {
  const patches = refPatches(pixels, B, 3, CFG.image_size, CFG.patch_size);
  let l = 0;
  for (let b = 0; b < B; b++) l += refSampleLoss(CFG, params, patches[b], Array.from(order.subarray(b * N, (b + 1) * N)), visible);
  return l / B;
}

const pixels32 = randn(B * 3 * 8 * 8, 7);
const pixels64 = Float64Array.from(pixels32);

describe('MAE masking', () => {
  it('keeps exactly round(0.25·N) patches, a permutation per sample, distinct across samples, seeded', () => {
    for (const n of [16, 49, 64, 10]) {
      const m = randomMasking(8, n, 0.75, makeRng(3));
      expect(m.visible).toBe(Math.round(0.25 * n));
      const keeps = new Set<string>();
      for (let b = 0; b < 8; b++) {
        const row = Array.from(m.order.subarray(b * n, (b + 1) * n));
        expect([...row].sort((x, y) => x - y)).toEqual(Array.from({ length: n }, (_, i) => i));
        keeps.add([...row.slice(0, m.visible)].sort((x, y) => x - y).join(','));
      }
      expect(keeps.size).toBe(8);
      expect(randomMasking(8, n, 0.75, makeRng(3)).order).toEqual(m.order);
      expect(randomMasking(8, n, 0.75, makeRng(4)).order).not.toEqual(m.order);
    }
    expect(visibleCount(16, 0.75)).toBe(4);
    expect(visibleCount(3, 0.9)).toBe(1);
  });

  it('each patch index is visible about 25% of the time', () => {
    const n = 16;
    const m = randomMasking(4000, n, 0.75, makeRng(11));
    const seen = new Float64Array(n);
    for (let b = 0; b < 4000; b++) for (let i = 0; i < m.visible; i++) seen[m.order[b * n + i]]++;
    // Binomial(4000, 0.25): sd ≈ 27; 6 sd = 164.
    for (const c of seen) expect(Math.abs(c - 1000)).toBeLessThan(164);
  });
});

describe('MAE model', () => {
  it('the position table is the 2-D sin-cos of the reference', () => {
    expectAllclose(sinCos2d(8, 4), Float64Array.from(refPosTable(8, 4).flatMap((r) => [...r])), TOL.f32Elementwise);
  });

  it('per-patch normalisation: zero mean, unbiased variance one (eps 1e-6)', () =>
    scopeAsync(async () => {
      const t = randn(5 * 12, 21, 2, 0.5);
      const got = await toArray(normalizePatches(tensor(t, [1, 5, 12])));
      const want = new Float64Array(t.length);
      for (let r = 0; r < 5; r++) {
        const row = Array.from(t.subarray(r * 12, r * 12 + 12));
        const mu = row.reduce((a, b) => a + b, 0) / 12;
        const va = row.reduce((a, b) => a + (b - mu) ** 2, 0) / 11;
        row.forEach((v, i) => {
          want[r * 12 + i] = (v - mu) / Math.sqrt(va + 1e-6);
        });
      }
      expectAllclose(got, want, TOL.norm);
    }));

  it(
    'loss and latent match the float64 reference; every parameter tensor’s gradient matches its central differences',
    () =>
      scopeAsync(async () => {
        const { model, params } = await randomModel(100);
        const m = randomMasking(B, N, CFG.mask_ratio, makeRng(5));
        const loss = model.forward(tensor(pixels32, [B, 3, 8, 8]), m);
        const want = refLoss(params, pixels64, m.order, m.visible);
        expectAllclose(await toArray(loss), [want], TOL.modelForward);

        const lat = noGrad(() => model.encoder.latent(tensor(pixels32, [B, 3, 8, 8])));
        expect(lat.shape).toEqual([B, N, CFG.hidden_size]);
        const patches = refPatches(pixels64, B, 3, 8, 2);
        const wantLat = Float64Array.from(patches.flatMap((pb) => refLatent(CFG, params, pb).flatMap((r) => [...r])));
        expectAllclose(await toArray(lat), wantLat, TOL.modelForward);

        backward(loss);
        // Every parameter tensor, at up to 3 seeded positions each (central differences cost two
        // reference losses per element).
        const pick = makeRng(17);
        for (const [k, t] of model.namedParameters()) {
          const all = await toArray(t.grad!);
          const base = params.get(k)!;
          const at = [...new Set(Array.from({ length: Math.min(3, base.length) }, () => Math.floor(pick() * base.length)))];
          const got = at.map((i) => all[i]);
          const fd = new Float64Array(at.length);
          const h = 1e-5;
          for (const [n, i] of at.entries()) {
            const v = base[i];
            base[i] = v + h;
            const up = refLoss(params, pixels64, m.order, m.visible);
            base[i] = v - h;
            const down = refLoss(params, pixels64, m.order, m.visible);
            base[i] = v;
            fd[n] = (up - down) / (2 * h);
          }
          expectAllclose(got, fd, TOL.modelGradient, { label: `d loss / d ${k}` });
        }
        model.dispose();
      }),
    120_000,
  );

  it('the loss is on masked patches only: the encoder ignores them, a per-patch affine change of one leaves the loss', () =>
    scopeAsync(async () => {
      const { model } = await randomModel(200);
      const m = randomMasking(B, N, CFG.mask_ratio, makeRng(9));
      const x = tensor(pixels32, [B, 3, 8, 8]);
      // Sample 0's first masked patch, changed by a·v + b on its pixels (all channels).
      const t = m.order[m.visible];
      const [i, j] = [Math.floor(t / 4), t % 4];
      const shifted = Float32Array.from(pixels32);
      const other = Float32Array.from(pixels32);
      for (let c = 0; c < 3; c++)
        for (let pi = 0; pi < 2; pi++)
          for (let pj = 0; pj < 2; pj++) {
            const at = (c * 8 + i * 2 + pi) * 8 + j * 2 + pj;
            shifted[at] = 3 * shifted[at] + 0.5;
            other[at] = -other[at] + 0.1 * (pi - pj);
          }
      await noGrad(async () => {
        const patches = model.encoder.patches(x);
        const encA = await toArray(model.encoder.forwardVisible(patches, m));
        const encB = await toArray(model.encoder.forwardVisible(model.encoder.patches(tensor(other, [B, 3, 8, 8])), m));
        expect(Array.from(encB)).toEqual(Array.from(encA));
        const l0 = (await toArray(model.forward(x, m)))[0];
        const l1 = (await toArray(model.forward(tensor(shifted, [B, 3, 8, 8]), m)))[0];
        const l2 = (await toArray(model.forward(tensor(other, [B, 3, 8, 8]), m)))[0];
        expect(Math.abs(l1 - l0)).toBeLessThan(1e-4 * l0);
        expect(Math.abs(l2 - l0)).toBeGreaterThan(1e-3 * l0);
      });
      model.dispose();
    }));

  it('AdamW on one fixed batch and masking lowers the loss', () =>
    scopeAsync(async () => {
      manualSeed(1);
      const model = MaskedAutoencoder.fromConfig(CFG);
      const opt = new AdamW(model.trainableParameters(), { lr: 3e-3, betas: [0.9, 0.95], weightDecay: 0.05 });
      const m = randomMasking(B, N, CFG.mask_ratio, makeRng(2));
      const x = tensor(pixels32, [B, 3, 8, 8]).keep();
      const losses: number[] = [];
      for (let s = 0; s < 40; s++) {
        const l = model.forward(x, m);
        if (s === 0 || s === 39) losses.push((await toArray(l))[0]);
        backward(l);
        opt.step();
        opt.zeroGrad();
        l.dispose();
      }
      expect(losses[1]).toBeLessThan(0.7 * losses[0]);
      x.dispose();
      opt.dispose();
      model.dispose();
    }));

  it('rejects a masking of another shape and a bad config', () => {
    const model = MaskedAutoencoder.fromConfig(CFG);
    expect(() => model.forward(ops.reshape(tensor(pixels32, [B, 3, 8, 8]), [B, 3, 8, 8]), randomMasking(1, N, 0.75, makeRng(1)))).toThrow(
      /masking is for \[1, 16\]/,
    );
    expect(() => MaskedAutoencoder.fromConfig({ ...CFG, hidden_size: 10 })).toThrow(/not divisible by 2 heads|multiple of 4/);
    expect(() => MaskedAutoencoder.fromConfig({ ...CFG, patch_size: 3 })).toThrow(/not a multiple of patch_size 3/);
    model.dispose();
  });
});
