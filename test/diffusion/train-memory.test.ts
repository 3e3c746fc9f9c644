/**
 * The training loops of src/train with the garbage-collector safety net off: after a run only
 * what the loop hands back is alive (the EMA weights of stage 2), nothing of its steps.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DiTDH } from '../../src/models/dit.js';
import { RAEDecoder } from '../../src/models/rae-decoder.js';
import { rand, randn } from '../../src/tensor/creation.js';
import { memoryStats, type MemoryStats } from '../../src/tensor/scope.js';
import { setGcSafetyNet } from '../../src/tensor/tensor.js';
import { normalizeImages, trainDecoder, trainDiffusion } from '../../src/train/rae.js';
import { useGpu } from '../helpers/setup.js';

useGpu();

let previousNet = true;
beforeAll(() => {
  previousNet = setGcSafetyNet(false);
});
afterAll(() => {
  setGcSafetyNet(previousNet);
});

const live = (s: MemoryStats) => ({ liveTensors: s.liveTensors, liveBuffers: s.liveBuffers, liveBytes: s.liveBytes });

describe('training loops free their steps (safety net off)', () => {
  it('trainDiffusion: 3 steps with clipping and EMA leave the model, the data and the EMA weights', async () => {
    const model = DiTDH.fromConfig({
      input_size: 4,
      patch_size: 1,
      in_channels: 8,
      hidden_size: [32, 48],
      depth: [1, 1],
      num_heads: [2, 2],
      num_classes: 3,
    });
    const latents = randn([6, 8, 4, 4], { seed: 1 });
    const before = live(memoryStats());
    const r = await trainDiffusion(model, latents, Int32Array.from([0, 1, 2, 0, 1, 2]), {
      steps: 3,
      batch: 4,
      lr: 1e-3,
      clip: 1,
      logEvery: 1,
      quiet: true,
    });
    expect(r.losses.map((l) => l.step)).toEqual([1, 2, 3]);
    expect(r.losses.every((l) => Number.isFinite(l.loss))).toBe(true);
    const trainable = model.trainableParameters();
    expect(r.ema.shadow.length).toBe(trainable.length);
    expect(live(memoryStats())).toEqual({
      liveTensors: before.liveTensors + trainable.length,
      liveBuffers: before.liveBuffers + trainable.length,
      liveBytes: before.liveBytes + trainable.reduce((n, p) => n + p.buffer.size, 0),
    });
    r.ema.dispose();
    expect(live(memoryStats())).toEqual(before);
    model.dispose();
    latents.dispose();
  });

  it('trainDecoder: 3 steps with noise augmentation leave nothing behind', async () => {
    const decoder = RAEDecoder.fromConfig({
      hidden_size: 16,
      decoder_hidden_size: 32,
      decoder_num_hidden_layers: 1,
      decoder_num_attention_heads: 2,
      decoder_intermediate_size: 64,
      patch_size: 4,
      num_patches: 4,
    });
    const tokens = randn([5, 4, 16], { seed: 2 });
    const images = rand([5, 3, 8, 8], { seed: 3 });
    // The ImageNet mean/std constants are uploaded once per runtime and kept (a compiled step may
    // not upload): create them before the baseline so that only the loop's own tensors count.
    normalizeImages(images).dispose();
    const before = live(memoryStats());
    const r = await trainDecoder(decoder, tokens, images, { steps: 3, batch: 2, lr: 1e-3, logEvery: 3, quiet: true });
    expect(r.losses.length).toBe(1);
    expect(Number.isFinite(r.losses[0].loss)).toBe(true);
    expect(live(memoryStats())).toEqual(before);
    for (const t of [tokens, images]) t.dispose();
    decoder.dispose();
  });
});
