/**
 * `rae eval --run DIR` on a tiny trained run (preset tiny: 16×16 images, both stages, child
 * processes as a user runs them): sampling for gFID when the run has no large enough sample set,
 * eval.json with every figure and count, the too-few policy (2 reconstructions: precision/recall
 * null, not a number), reference features cached under RAE_CACHE_DIR, and the report's quality
 * section. Kept to 12 Inception images (≈ 1 min on a quiet lavapipe).
 */
import fs from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { rae, type Ran } from '../helpers/cli.js';

const tmp = () => fs.mkdtempSync(path.join(tmpdir(), 'rae-eval-run-'));

describe('rae eval --run', () => {
  it('evaluates a tiny trained run: eval.json, cached reference features, the report section', async () => {
    const dir = tmp();
    const cache = tmp();
    const ok = (r: Ran) => expect(r.status, r.stdout + r.stderr).toBe(0);
    ok(await rae(['train-decoder', '--run', dir, '--preset', 'tiny']));
    ok(await rae(['train-dit', '--run', dir]));
    const r = await rae(['eval', '--run', dir, '--reconstructions', '2', '--samples', '4', '--reference', '4', '--kid-subsets', '10'], {
      RAE_CACHE_DIR: cache,
    });
    ok(r);
    expect(r.stdout).toMatch(/sampling 4 images for gFID/);
    expect(r.stdout).toMatch(
      /rFID \d+\.\d+ \(2 held-out images\) {2}PSNR \d+\.\d+ dB {2}SSIM \d\.\d{3} {2}gFID \d+\.\d+ {2}KID .* \(4 samples vs 4 training images\)/,
    );
    const e = JSON.parse(fs.readFileSync(path.join(dir, 'eval.json'), 'utf8'));
    expect(e.counts).toEqual({ reconstructions: 2, samples: 4, reference: 4 });
    for (const k of ['rfid', 'gfid', 'kid', 'kidStd', 'psnr', 'ssim']) expect(Number.isFinite(e[k]), k).toBe(true);
    expect(e.rfid).toBe(e.reconstruction.fid);
    expect(e.gfid).toBe(e.generation.fid);
    expect(e.precision).toBeGreaterThanOrEqual(0);
    expect(e.recall).toBeLessThanOrEqual(1);
    // Two reconstructions: precision/recall need 4, so they are null with a warning.
    expect(e.reconstruction.precision).toBeNull();
    expect(e.warnings.join('\n')).toMatch(/rFID: precision\/recall skipped: held-out originals has 2 images/);
    expect(e.samplesTag).toBe('eval-4');
    expect(fs.existsSync(path.join(dir, 'samples', 'eval-4', 'samples.safetensors'))).toBe(true);
    expect(e.comparable).toBe(false);
    expect(e.note).toMatch(/not comparable to published values/);
    const cached = fs.readdirSync(cache).filter((f) => f.endsWith('.features.safetensors'));
    expect(cached.map((f) => f.split('_')[1]).sort()).toEqual(['held-out', 'train']);
    const report = fs.readFileSync(path.join(dir, 'report.html'), 'utf8');
    expect(report).toContain('Quality metrics');
    expect(report).toContain('Reconstruction (rFID)');
    expect(report).toMatch(/not comparable to published values/);
    expect(report).toContain(String(Number(e.rfid.toPrecision(4))));
  }, 900_000);
});
