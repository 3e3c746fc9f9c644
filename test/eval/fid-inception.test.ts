/**
 * The standard FID Inception run by the engine (src/eval/fid-inception.ts, through
 * loadFeatureNetwork({ inception })) against PyTorch (test/eval/reference_fid_inception.py: the
 * pytorch-fid blocks written out with torch.nn.functional, BN unfolded) on a synthetic weights file
 * of the right keys and shapes (random, He-scaled convs; BN statistics near identity), two images
 * of different sizes. Tolerance family modelForward (1e-4 · max|want|), as the nsfwjs network's
 * tfjs parity test. Skipped (reported) where Debian's python3 lacks torch.
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { loadFeatureNetwork } from '../../src/eval/extract.js';
import { FID_INCEPTION_OPTIONAL, FID_INCEPTION_REQUIRED } from '../../src/eval/fid-inception-layout.js';
import { saveSafetensors, type WriteTensor } from '../../src/io/index.js';
import { expectAllclose, TOL } from '../helpers/compare.js';
import { randn } from '../helpers/random.js';
import { useGpu } from '../helpers/setup.js';

useGpu();

const PYTHON = '/usr/bin/python3';
const SCRIPT = path.resolve(__dirname, 'reference_fid_inception.py');
const hasTorch = spawnSync(PYTHON, ['-c', 'import torch, numpy'], { stdio: 'ignore' }).status === 0;
const dir = mkdtempSync(path.join(tmpdir(), 'rae-fid-net-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function syntheticWeights(file: string): void {
  const tensors: Record<string, WriteTensor> = {};
  let seed = 100;
  for (const t of [...FID_INCEPTION_REQUIRED, ...FID_INCEPTION_OPTIONAL]) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    const r = randn(n, seed++);
    let data: Float32Array;
    if (t.name.endsWith('.conv.weight')) {
      const fanIn = t.shape[1] * t.shape[2] * t.shape[3];
      data = r.map((v) => v * Math.sqrt(2 / fanIn));
    } else if (t.name.endsWith('running_var')) data = r.map((v) => 1 + 0.1 * Math.abs(v));
    else if (t.name.endsWith('bn.weight')) data = r.map((v) => 1 + 0.1 * v);
    else data = r.map((v) => 0.05 * v); // bn.bias, running_mean, fc
    tensors[t.name] = { dtype: 'F32', shape: t.shape, data };
  }
  saveSafetensors(file, tensors);
}

describe.skipIf(!hasTorch)('FID Inception in the engine vs PyTorch', () => {
  it('pool3 features of two images of different sizes', async () => {
    const weights = path.join(dir, 'fid-inception.safetensors');
    syntheticWeights(weights);
    const images = [
      { height: 17, width: 23, data: Uint8Array.from({ length: 17 * 23 * 3 }, (_, i) => (i * 29) % 256) },
      { height: 40, width: 9, data: Uint8Array.from({ length: 40 * 9 * 3 }, (_, i) => (i * i + 7) % 256) },
    ];
    const args = images.flatMap((im, i) => {
      const f = path.join(dir, `img${i}.bin`);
      writeFileSync(f, im.data);
      return [f, String(im.height), String(im.width)];
    });
    const out = path.join(dir, 'want.bin');
    // Asynchronously: a synchronous child would stall vitest's worker (its RPC times out).
    const t0 = performance.now();
    await promisify(execFile)(PYTHON, [SCRIPT, weights, out, ...args]);
    const t1 = performance.now();
    const buf = readFileSync(out);
    const want = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
    const net = loadFeatureNetwork({ inception: weights });
    try {
      expect(net.comparable).toBe(true);
      const got = await net.features(images);
      console.log(
        `FID Inception: PyTorch ${((t1 - t0) / 1000).toFixed(1)} s, engine ${((performance.now() - t1) / 1000).toFixed(1)} s (2 images, incl. weights)`,
      );
      expect(got.length).toBe(2 * 2048);
      expectAllclose(got, want, TOL.modelForward, { label: 'FID Inception pool3', shape: [2, 2048] });
      // Not a trivial agreement: the features vary across images and channels.
      expect(new Set(Array.from(want.subarray(0, 64), (v) => v.toFixed(3))).size).toBeGreaterThan(10);
    } finally {
      net.dispose();
    }
  }, 300_000);
});
